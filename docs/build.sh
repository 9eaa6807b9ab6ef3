#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, warnings as errors, no network.
#   pip install -e ".[docs]" && bash docs/build.sh      then open docs/_build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MPLBACKEND=agg
exec python -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
