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
# Drift scans run `git clone` and `terraform` (or `tofu`): without them every scan would be an ERROR.
# Terraform comes from HashiCorp's release archive, checked against its published SHA256SUMS.
ARG TERRAFORM_VERSION=1.9.8
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates curl unzip \
 && arch="$(dpkg --print-architecture)" \
 && cd /tmp \
 && curl -fsSLO "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_${arch}.zip" \
 && curl -fsSLO "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_SHA256SUMS" \
 && grep "linux_${arch}.zip" "terraform_${TERRAFORM_VERSION}_SHA256SUMS" | sha256sum -c - \
 && unzip -d /usr/local/bin "terraform_${TERRAFORM_VERSION}_linux_${arch}.zip" terraform \
 && rm -f /tmp/terraform_* \
 && apt-get purge -y curl unzip && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && terraform version && git --version
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY sql ./sql
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system --create-home nightshift
USER nightshift
# a provider cache shared by every scan's `terraform init` (otherwise each downloads its providers)
ENV TF_PLUGIN_CACHE_DIR=/home/nightshift/.terraform.d/plugin-cache
RUN mkdir -p "$TF_PLUGIN_CACHE_DIR"
ENTRYPOINT ["nightshift"]
CMD ["dispatcher", "run"]
