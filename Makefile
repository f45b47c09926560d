# The two commands of the README: `make run` (the portal with demo data on the embedded default)
# and `make test` (the whole suite). Both create .venv and install what they need.
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test test-only lint bench bench-volume faults clean

$(PY):
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-test.txt | $(PY)
	$(PIP) install --quiet -r requirements-test.txt
	touch $@

run: $(VENV)/.run-deps
	DEBUG=true BRAZE_EXTRA_ENDPOINTS=$${BRAZE_EXTRA_ENDPOINTS:-http://127.0.0.1:9400} \
		$(PY) manage.py run_demo

test: $(VENV)/.test-deps test-only

test-only:
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .

# Fault injection with real processes on PostgreSQL + Redis (both on loopback; see
# tests/faults/run.py), then fuzzing, schemathesis and the secrets scan; prints one table.
faults: $(VENV)/.test-deps
	$(PY) -m tests.faults.run $(FAULTS_ARGS)

# The production stack on this machine (gunicorn, PostgreSQL, Redis, django-q2, the Braze sandbox),
# measured and printed as one table; see tests/bench/run.py and docs/scaling.md. ~3 minutes.
bench: $(VENV)/.test-deps
	bash tests/bench/services.sh
	$(PY) -m tests.bench.run $(BENCH_ARGS)

# The pages and the delivery queries with 5 million submissions on PostgreSQL (database
# portal_volume, emptied and refilled): p50/p95 per page, bytes per submission, before and after
# retention; see tests/bench/volume.py. VOLUME_ARGS="--rows 1000000" or "--no-load".
bench-volume: $(VENV)/.test-deps
	$(PY) -m tests.bench.volume $(VOLUME_ARGS)

clean:
	rm -rf $(VENV) var test-artifacts
