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
# the horoscopes' local text-to-speech (EN and AR voices)
command -v espeak-ng >/dev/null || apt_install espeak-ng
command -v promtool >/dev/null || apt_install prometheus
command -v pgbackrest >/dev/null || apt_install pgbackrest
# PgBouncer: the transaction pooler of the production topology (tests/pooler, bench, soak)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer
# the web app's browser tests drive Debian's Chromium (no browser download); Noto gives the
# Arabic glyphs of the screenshots
command -v chromium >/dev/null || apt_install chromium
dpkg-query -W -f='${Status}' fonts-noto-core 2>/dev/null | grep -q "install ok installed" || apt_install fonts-noto-core
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

# npm tools pinned by package-lock.json: axe-core (injected by the browser tests), Lighthouse
# (bench/lighthouse.py) and htmx (its file is vendored into src/samia/web/static)
command -v npm >/dev/null || apt_install npm
npm_stamp=node_modules/.samia-installed
npm_want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  echo "setup: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$npm_want" > "$npm_stamp"
fi
