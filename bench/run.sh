#!/usr/bin/env bash
# Runs every benchmark on this machine and writes bench/results/*.json and RESULTS.md.
# Installs what it needs: the development requirements and Debian's wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s .venv/.dev
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
PY=.venv/bin/python
$PY -m bench.inference
$PY -m bench.intake
$PY -m bench.http_load
{
  echo "# Benchmark results"
  echo
  echo "Measured by \`bench/run.sh\` on $(nproc) cores; every ratio compares figures from the same run."
  echo
  cat bench/results/inference.md bench/results/intake.md bench/results/http_load.md
} > bench/results/RESULTS.md
echo "wrote bench/results/RESULTS.md"
