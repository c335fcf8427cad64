#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine: PostgreSQL server
# binaries (for the embedded/throwaway cluster) and the Python environment in .venv.
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  apt_install postgresql postgresql-contrib
fi
# ffprobe reads every uploaded audio file; promtool tests the SLO alert rules; pgBackRest
# backs up the embedded cluster (its restore drill runs in the test suite)
command -v ffprobe >/dev/null || apt_install ffmpeg
command -v promtool >/dev/null || apt_install prometheus
command -v pgbackrest >/dev/null || apt_install pgbackrest
# extra packages a target asks for (bench: wrk)
[ $# -gt 0 ] && apt_install "$@"

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.samia-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi
