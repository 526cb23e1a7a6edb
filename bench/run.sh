#!/usr/bin/env bash
# Runs every benchmark on this machine and writes bench/results/*.json and RESULTS.md.
# Installs what it needs: the development requirements, Debian's wrk and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s .venv/.dev browser
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
PY=.venv/bin/python
BENCHMARKS=(inference intake body hostile http_load zoo batch upload)
for name in "${BENCHMARKS[@]}"; do
  $PY -m "bench.$name"
done
{
  echo "# Benchmark results"
  echo
  echo "Measured by \`bench/run.sh\` on $(nproc) cores; every ratio compares figures from the same run."
  for name in "${BENCHMARKS[@]}"; do
    echo
    cat "bench/results/$name.md"
  done
} > bench/results/RESULTS.md
echo "wrote bench/results/RESULTS.md"
