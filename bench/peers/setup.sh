#!/usr/bin/env bash
# Install the peer benchmarks' dependencies into private directories:
#   bench/peers/.venv         procrastinate (requirements.txt)
#   bench/peers/node_modules  graphile-worker 0.17.x + pg (package-lock.json)
# Idempotent: each part is skipped when its stamp matches the pinned file.
# Env: PYTHON (default: python3, must be >= 3.9), FORCE=1 to reinstall.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- Python / procrastinate -------------------------------------------------
want_py="$(sha requirements.txt)"
if [[ "${FORCE:-0}" != 1 && -x .venv/bin/python && -f .venv/.bench-installed \
      && "$(cat .venv/.bench-installed)" == "$want_py" ]]; then
  echo "setup.sh: .venv up to date (procrastinate $(.venv/bin/python -c 'import procrastinate; print(procrastinate.__version__)'))"
else
  echo "setup.sh: installing procrastinate into bench/peers/.venv"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  .venv/bin/python -c 'import procrastinate, psycopg; print("procrastinate", procrastinate.__version__, "psycopg", psycopg.__version__, psycopg.pq.__impl__)'
  echo "$want_py" > .venv/.bench-installed
fi

# --- Node / graphile-worker ---------------------------------------------------
want_js="$(sha package-lock.json)"
if [[ "${FORCE:-0}" != 1 && -f node_modules/.bench-installed \
      && "$(cat node_modules/.bench-installed)" == "$want_js" ]]; then
  echo "setup.sh: node_modules up to date (graphile-worker $(node -p 'require("graphile-worker/package.json").version'))"
else
  echo "setup.sh: installing graphile-worker into bench/peers/node_modules"
  npm ci --no-audit --no-fund --loglevel=error
  node -p '"graphile-worker " + require("graphile-worker/package.json").version + ", pg " + require("pg/package.json").version'
  echo "$want_js" > node_modules/.bench-installed
fi
