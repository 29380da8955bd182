# One Dockerfile, two targets:
#   postgres — PostgreSQL 15 with pg_cron preloaded (docker-compose, and the testcontainers path of the tests)
#   app      — the nightshift package (migrate, dispatcher)
FROM postgres:15-bookworm AS postgres
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-cron \
 && rm -rf /var/lib/apt/lists/*
# pg_cron must be preloaded; its jobs run in background workers (no password needed for them)
CMD ["postgres", "-c", "shared_preload_libraries=pg_cron", "-c", "cron.database_name=nightshift", \
     "-c", "cron.use_background_workers=on", "-c", "max_worker_processes=32"]

FROM python:3.11-slim-bookworm AS app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY sql ./sql
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system nightshift
USER nightshift
ENTRYPOINT ["nightshift"]
CMD ["dispatcher", "run"]
