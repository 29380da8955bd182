# The two commands of the README, and the benchmarks. Works on a fresh Debian as root or as a user
# with sudo: missing apt packages are installed, the project goes into ./.venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# chromium: the HTML report test opens the page in a real headless browser (tests/integration/test_report_html.py)
APT_PACKAGES := postgresql-15 postgresql-15-cron chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test lint typecheck system-deps venv clean db-stop bench-schedule bench-dispatch bench-drift \
	bench-intake bench-process bench-notify scanners test-prowler bench-compliance bench-cost \
	bench-report bench-pr-review bench-remediation

demo: venv scanners
	$(BIN)/nightshift demo

test: venv scanners
	$(BIN)/python -m pytest

# Checkov at its pinned version in its own virtualenv (.nightshift/scanners/checkov); a no-op once there.
# The compliance tests use it (tests/support/compliance_support.py installs it too when pytest runs alone).
scanners: venv
	$(BIN)/nightshift scanners install checkov

lint: venv
	$(BIN)/ruff check dispatcher tests bench migrations
	$(BIN)/mypy

# enqueue_due() at 1,000,000 schedules (100,000 due) against the seed's row-by-row loop, and at 10,000,000
# schedules (1,000 due, nothing due); see bench/bench_schedule.py
bench-schedule: venv
	$(BIN)/python bench/bench_schedule.py

# The dispatcher against pgbench's raw SQL limit, procrastinate and graphile-worker (bench/bench_dispatch.py)
bench-dispatch: venv
	if [ -x bench/peers/setup.sh ]; then bench/peers/setup.sh >&2; fi
	$(BIN)/python bench/bench_dispatch.py

# A plan of 10,000 drifted resources: parse, record (inserts), rescan (updates), clean rescan (bench/bench_drift.py)
bench-drift: venv
	$(BIN)/python bench/bench_drift.py

# nightshift serve: signed GitHub deliveries (20% replays) against its own bare /healthz (bench/bench_intake.py)
bench-intake: venv
	$(BIN)/python bench/bench_intake.py

# What the reaper (kill every descendant of an agent run) adds per run (bench/bench_process.py)
bench-process: venv
	$(BIN)/python bench/bench_process.py

# 10,000 pending transitions across 100 Slack channels to a loopback receiver, against a bare httpx loop
bench-notify: venv
	$(BIN)/python bench/bench_notify.py

# The real Prowler against moto (about 2.3 GB installed once into .nightshift/scanners/prowler; minutes
# per scan on two cores): tests/integration/test_compliance_prowler.py, skipped by `make test`.
test-prowler: venv
	$(BIN)/nightshift scanners install prowler
	NIGHTSHIFT_TEST_PROWLER=1 $(BIN)/python -m pytest tests/integration/test_compliance_prowler.py \
		tests/unit/test_prowler_parser.py

# Compliance scans: overhead over a bare checkov, 100,000 check results recorded, an unchanged rescan
# (bench/bench_compliance.py)
bench-compliance: venv scanners
	$(BIN)/python bench/bench_compliance.py

# Pull-request review: one changed root of 50 against a full scan; webhook to comment on a loopback GitHub
bench-pr-review: venv scanners
	$(BIN)/python bench/bench_pr_review.py

# FOCUS ingest of 5,000,000 line items against a bare COPY, and the cost analysis against DuckDB (bench/bench_cost.py)
bench-cost: venv
	$(BIN)/python bench/bench_cost.py

# 100 drifted resources of one root adopted in one pull request (clone, edit, fmt, verification plan,
# commit, push, local forge) against one `terraform plan` of that root; needs terraform + moto
bench-remediation: venv
	$(BIN)/python bench/bench_remediation.py

# PostgreSQL 15 server binaries and pg_cron, from Debian, only when missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "need root or sudo to install:$$missing" >&2; exit 1; fi; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

db-stop: venv
	-$(BIN)/nightshift db stop
	-$(BIN)/nightshift db --data-dir .nightshift/test-postgres --port 54339 stop

clean: db-stop
	rm -rf $(VENV) .nightshift build dist

# The reporting views for one organization among 200 (1,000,000 findings, 5,000,000 scans) against a
# bare count(*) of its rows, with EXPLAIN (ANALYZE), and the HTML report (bench/bench_report.py)
bench-report: venv
	$(BIN)/python bench/bench_report.py
