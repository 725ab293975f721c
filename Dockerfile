# browser assets (htmx, Alpine.js) exactly as package-lock.json pins them
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
# torch is pinned in requirements.txt (on Linux PyPI serves its CUDA build: right for the gpu profile)
RUN pip install -r requirements.txt
COPY . .
COPY --from=assets /app/node_modules ./node_modules
# static files collected at build time (whitenoise serves them); the key only satisfies the settings check
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time-only-not-a-real-secret-key python manage.py collectstatic --noinput -v0
RUN useradd --create-home tandem && mkdir -p /var/lib/tandem/models /var/lib/tandem/imports \
    && chown -R tandem /var/lib/tandem /app
USER tandem
EXPOSE 8000
