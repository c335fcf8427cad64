# The two commands of the README: `make run` and `make test`. Both install what they need.
.PHONY: run test lint bench setup

setup:
	@scripts/setup.sh

run: setup
	.venv/bin/samia serve --demo

test: setup
	.venv/bin/pytest

lint: setup
	.venv/bin/ruff check src tests bench

bench: setup
	@scripts/setup.sh wrk
	.venv/bin/python bench/run.py
	.venv/bin/python bench/audit.py
	.venv/bin/python bench/analytics.py
