# blink: `make demo` runs the main job end to end, `make test` runs the whole suite.
# Both install what they need: Debian packages (as root) and two venvs built from the
# server's own Python (/usr/bin/python3), in a directory the PostgreSQL server can read:
# server-venv holds only what PL/Python imports (pyproject's core dependencies), venv holds
# everything else (trainer, migrations, bench, tests).

SHELL := /bin/bash
.DEFAULT_GOAL := help
SYSTEM_PYTHON := /usr/bin/python3
STATE := $(shell $(SYSTEM_PYTHON) devenv/paths.py state-dir)
VENV := $(STATE)/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.blink-installed
SERVER_VENV := $(STATE)/server-venv
SERVER_STAMP := $(SERVER_VENV)/.blink-installed
export BLINK_STATE_DIR := $(STATE)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help deps venv native native-install test test-unit demo dsn psql stop lint clean train blink replica shards bench bench-pooled bench-ab bench-scaleout freeze schema fuzz validate

help:
	@echo "make demo   start the project-local PostgreSQL, install blink, score a few users"
	@echo "make test   run the whole test suite on throwaway clusters"
	@echo "make dsn    print the demo cluster's connection string;  make psql  open psql on it"
	@echo "make stop   stop the demo cluster;  make lint  ruff + mypy + pgspot"
	@echo "make freeze record new db/incremental files as released;  make schema  regenerate db/schema.sql"
	@echo "make train  retrain on the demo cluster (ARGS=--deploy promotes a better model)"
	@echo "make blink  the blink command on the demo cluster, e.g. make blink ARGS='report --user user-0'"
	@echo "make replica a hot standby of the demo cluster (docs/scale-out.md)"
	@echo "make shards  a router and two shards around the demo cluster (docs/scale-out.md)"
	@echo "make bench  benchmarks;  make bench-scaleout  the sharding router's cost;  make fuzz  the long fuzz run"
	@echo "make bench-pooled  the round-based targets over every run of the newest run's commit (RUNS='a.json b.json' names them)"
	@echo "make bench-ab VARIANT=x.c  a changed blink_native.c against the module, blink_score_batch pair by pair (~2 min)"
	@echo "make validate  monitoring's many-seed validation (10 seeds x 7 scenarios, ~10 min)"
	@echo "make native  build blink_native (blink_score in C);  make native-install  copy it into pg_config --pkglibdir (root)"

deps:
	@bash devenv/system-deps.sh

$(STAMP): pyproject.toml | deps
	@umask 022; mkdir -p $(STATE)
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	@echo "blink: installing the Python environment in $(VENV) (log: $(STATE)/pip.log)"
	@umask 022; { $(PY) -m pip install --upgrade pip && $(PY) -m pip install -e '.[dev]'; } \
		> $(STATE)/pip.log 2>&1 || { tail -30 $(STATE)/pip.log; exit 1; }
	@touch $@

$(SERVER_STAMP): pyproject.toml | deps
	@umask 022; mkdir -p $(STATE)
	@test -x $(SERVER_VENV)/bin/python || $(SYSTEM_PYTHON) -m venv $(SERVER_VENV)
	@echo "blink: installing the server's Python environment in $(SERVER_VENV)"
	@umask 022; $(SERVER_VENV)/bin/python -m pip install $$($(SYSTEM_PYTHON) devenv/paths.py server-requirements) \
		> $(STATE)/server-pip.log 2>&1 || { tail -30 $(STATE)/server-pip.log; exit 1; }
	@touch $@

venv: deps $(STAMP) $(SERVER_STAMP)

# blink's PostgreSQL module (docs/native.md); blink's own clusters build it when they start.
native: deps
	@$(SYSTEM_PYTHON) -m devenv.native

native-install: deps
	@$(SYSTEM_PYTHON) -m devenv.native install

test: venv
	$(PY) -m pytest -q

test-unit: venv
	$(PY) -m pytest -q tests/unit

demo: venv
	@$(PY) -m devenv.demo

dsn:
	@$(SYSTEM_PYTHON) -m devenv.demo --dsn

psql:
	psql "$$($(SYSTEM_PYTHON) -m devenv.demo --dsn)"

stop:
	@$(SYSTEM_PYTHON) -m devenv.demo --stop

# `blink` on the demo cluster unless DATABASE_URL names another database.
DEMO_URL = $${DATABASE_URL:-$$($(SYSTEM_PYTHON) -m devenv.demo --dsn)}

train: venv
	@DATABASE_URL="$(DEMO_URL)" $(VENV)/bin/blink train $(ARGS)

blink: venv
	@DATABASE_URL="$(DEMO_URL)" $(VENV)/bin/blink $(ARGS)

# A hot standby of the demo cluster (pg_basebackup -R); make replica ARGS=--stop stops it.
replica: venv
	@$(PY) -m devenv.replica --primary "$$($(SYSTEM_PYTHON) -m devenv.demo --dsn)" $(ARGS)

# Sharding: the demo database as model home, two shard clusters and a router database
# (make shards ARGS=--stop stops the shard clusters).
shards: venv
	@$(PY) -m devenv.shards $(ARGS)

bench: venv
	$(PY) -m bench $(if $(QUICK),--quick)

# The round-based targets over several runs' rounds (bench/pooled.py): by default the newest
# run and every earlier run of the same commit.
bench-pooled: venv
	$(PY) -m bench.pooled $(RUNS)

# A variant of db/native/blink_native.c against the module, batch by batch in one bench
# server (bench/native_ab.py); QUICK=1 on the quick bench's data; ARGS='--pairs 200'.
bench-ab: venv
	@test -n "$(VARIANT)" || { echo "make bench-ab: name the variant, VARIANT=path/to/blink_native.c" >&2; exit 2; }
	$(PY) -m bench.native_ab $(VARIANT) $(if $(QUICK),--quick) $(ARGS)

# The sharding router's cost: router hop vs the shard directly, throughput with 1 and 2 shards.
bench-scaleout: venv
	$(PY) -m bench.scaleout $(if $(QUICK),--quick)

lint: venv
	$(PY) -m ruff check pyfuncs trainer devenv migrations tests bench validation
	$(PY) -m mypy
	$(PY) -m devenv.pgspot

# The fuzz test of make test, longer: 50,000 generated inputs or 15 minutes.
fuzz: venv
	BLINK_FUZZ_CASES=50000 BLINK_FUZZ_SECONDS=900 $(PY) -m pytest -q tests/db/test_fuzz.py

# Monitoring's acceptance figures over 10 seeds (make test runs a fast version of each).
validate: venv
	$(PY) -m validation.monitoring --seeds $(or $(SEEDS),10)

freeze: venv
	@$(PY) -c "from migrations import layers; print('frozen:', ', '.join(layers.freeze()) or 'nothing new')"

schema: venv
	$(PY) -m devenv.schema --write

clean: stop
	rm -rf .blink
