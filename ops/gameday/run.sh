#!/usr/bin/env bash
# GameDay: rehearse a failure against a scratch copy of the real service (its own throwaway
# PostgreSQL, no outside accounts). Scenarios: storage, provider, database, all.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
case "${1:-all}" in
  storage)  exec .venv/bin/pytest -q tests/ops/test_gameday.py ;;
  provider) exec .venv/bin/pytest -q tests/ops/test_providers.py tests/ops/test_incidents.py -k "breaker or budget" ;;
  database) exec .venv/bin/pytest -q -s tests/ops/test_backup.py ;;
  all)      exec .venv/bin/pytest -q -s tests/ops/test_gameday.py tests/ops/test_providers.py tests/ops/test_backup.py ;;
  *) echo "usage: $0 storage|provider|database|all" >&2; exit 2 ;;
esac
