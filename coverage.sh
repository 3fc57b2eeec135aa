#!/usr/bin/env bash
# coverage.sh -- run the whole test suite under coverage: a terminal report and an HTML
# report in htmlcov/index.html, Python and the compiled _core.pyx alike (the extension
# is rebuilt with Cython line tracing for the run, and rebuilt normally afterwards).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Removing the generated C makes Cython regenerate it with (or without) tracing.
rebuild() {
    rm -f fastsync/_core.c
    FASTSYNC_LINETRACE=$1 .venv/bin/python setup.py -q build_ext --inplace --force >/dev/null
}
trap 'rebuild 0' EXIT
rebuild 1

rm -f .coverage .coverage.*
.venv/bin/python -m pytest --cov --cov-config=.coveragerc --cov-report=term \
    --cov-report=html "$@"
echo "coverage: HTML report in $(pwd)/htmlcov/index.html"
