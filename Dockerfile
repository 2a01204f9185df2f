# Mozart's Discord bot. CPU torch by default; for CUDA:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t mozart .
# Run (the database lives on a volume):
#   docker run -e DISCORD_TOKEN=... -v mozart-data:/data mozart
# The same image runs composing workers (`python -m workers`): docker-compose.yml starts bot,
# workers, Redis and PostgreSQL together.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/mozart.db \
    MOZART_MODELS_DIR=/data/models \
    LOG_FORMAT=json

# ffmpeg from Debian (imageio-ffmpeg's own binary is the fallback).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY composer ./composer
COPY cogs ./cogs
COPY db ./db
COPY workers ./workers
COPY bot.py mozart_cli.py ./
RUN pip install ".[queue,postgres]" \
    && useradd --create-home mozart \
    && mkdir -p /data && chown mozart /data
USER mozart
VOLUME ["/data"]
# Migrations run at start-up; `python -m db upgrade` (which reads the same DATABASE_URL) runs them by hand,
# `python -m db upgrade --sql` prints them without running.
CMD ["python", "bot.py"]
