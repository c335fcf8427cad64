# The two commands of the README: `make run` and `make test`. Both install what they need.
.PHONY: run test test-pooled check lint bench soak setup

setup:
	@scripts/setup.sh

run: setup
	.venv/bin/samia serve --demo

# The house checks, quickest first; make stops at the first that fails.
check: lint
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo

test: check
	.venv/bin/pytest

# the whole suite with the app's connections through PgBouncer in transaction mode (issue 18)
test-pooled: setup
	TEST_VIA_POOLER=1 .venv/bin/pytest

lint: setup
	.venv/bin/ruff check src tests bench

bench: setup
	@scripts/setup.sh wrk
	.venv/bin/python bench/run.py
	.venv/bin/python bench/audit.py
	.venv/bin/python bench/analytics.py

# ten minutes (SOAK_MINUTES) of mixed traffic at 70 % of its measured maximum through PgBouncer, two API processes and a worker (loopback only)
soak: setup
	@scripts/setup.sh wrk pgbouncer
	.venv/bin/python bench/soak.py --minutes $${SOAK_MINUTES:-10}
