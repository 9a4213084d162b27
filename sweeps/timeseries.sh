#!/usr/bin/env bash
# The time-series sweep (docs/guide/timeseries.md): FCN and ResNet, each with and without SR, 10 paired seeds, on
# 7 archive datasets, cheapest first; one sweep file per dataset and model. Two one-thread worker processes walk
# the same list: a run is claimed through its lock, so they share every sweep and neither waits for the other.
# Each finished run is committed (sweeps/commit_run.sh). Resumable: run it again.
#   nohup sweeps/timeseries.sh > /tmp/timeseries_sweep.log 2>&1 &
set -eu
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
sweeps=()
for dataset in italypowerdemand basicmotions gunpoint arrowhead japanesevowels osuleaf acsf1; do
  sweeps+=("timeseries_${dataset}_fcn" "timeseries_${dataset}_resnet")
done
worker() {
  for sweep in "${sweeps[@]}"; do
    nice -n 10 .venv/bin/srblock sweep -c "$sweep" --after-run sweeps/commit_run.sh
  done
}
worker & sleep 60; worker & wait
