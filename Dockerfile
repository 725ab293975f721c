FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
# torch is pinned in requirements.txt (on Linux PyPI serves its CUDA build: right for the gpu profile)
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home tandem && mkdir -p /var/lib/tandem/models /var/lib/tandem/imports \
    && chown -R tandem /var/lib/tandem /app
USER tandem
EXPOSE 8000
