# Two images from one file (docker-compose.yml builds both):
#   --target web    web, migrate, beat and the `default`-queue worker: requirements-web.txt, no torch
#   --target model  the model workers (queue `model`, CPU or the gpu profile): requirements-model.txt, with torch
#   (stage assets: npm ci for Chart.js, whose files the web image collects as static files)
# A plain `docker build .` builds the last stage, web.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home tandem && mkdir -p /var/lib/tandem/models /var/lib/tandem/imports \
    && chown -R tandem /var/lib/tandem

FROM base AS model
COPY requirements-web.txt requirements-model.txt ./
# torch is pinned first in requirements-model.txt (on Linux PyPI serves its CUDA build: right for the gpu profile)
RUN pip install -r requirements-model.txt
COPY . .
RUN chown -R tandem /app
USER tandem

# Chart.js for the dashboard (package.json's one runtime dependency), pinned by package-lock.json
FROM node:22-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM base AS web
COPY requirements-web.txt ./
RUN pip install -r requirements-web.txt
COPY . .
# only the file the dashboard loads (and its source map): settings serve node_modules/chart.js/dist as
# static/vendor/chart.js/, collected below
COPY --from=assets /app/node_modules/chart.js/dist/chart.umd.min.js /app/node_modules/chart.js/dist/chart.umd.min.js.map \
     node_modules/chart.js/dist/
# static files collected at build time (whitenoise serves them); the key only satisfies the settings check
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time-only-not-a-real-secret-key python manage.py collectstatic --noinput -v0 \
    && chown -R tandem /app
USER tandem
EXPOSE 8000
