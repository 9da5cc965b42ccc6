#!/bin/sh
# The benchmark in one command; see bench/README.md. Arguments go to bench/run.py.
set -e
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x /work/venv/bin/python ] && echo /work/venv/bin/python || echo python3 )}"
exec "$PYTHON" bench/run.py "$@"
