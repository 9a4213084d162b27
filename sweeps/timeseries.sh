#!/usr/bin/env bash
# The time-series sweep (docs/guide/timeseries.md): FCN and ResNet, each with and without SR, 10 paired seeds, on
# 7 archive datasets, cheapest first (but ACSF1 x FCN before the long datasets' ResNets, see below); one sweep file
# per dataset and model. Two one-thread worker processes walk the same list: a run is claimed through its lock, so
# they share every sweep and neither waits for the other.
# Each finished run is committed (sweeps/commit_run.sh). Resumable: run it again.
#   nohup sweeps/timeseries.sh > /tmp/timeseries_sweep.log 2>&1 &
# On OSULeaf and ACSF1 it runs the baseline and the block-3 arm (the issue's fixed placement) only; their block-1
# arms (~18 run-hours, beyond what issue 22 asks) wait until issue 21's CPU sweep has its seeds: `--all` adds them.
set -eu
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
passes=(primary)
case "${1:-}" in
  "") ;;
  --all) passes+=(all) ;;
  *) echo "usage: sweeps/timeseries.sh [--all], got: $*" >&2; exit 2 ;;
esac
sweeps=()
for dataset in italypowerdemand basicmotions gunpoint arrowhead japanesevowels; do
  sweeps+=("timeseries_${dataset}_fcn" "timeseries_${dataset}_resnet")
done
# the two long-series datasets FCN first: ACSF1 x FCN tests the prediction RESULTS.md §7 wrote before its runs;
# RESULTS.md §7's open questions on OSULeaf (detail screen, 10 runs; block-size screen, 5) before ACSF1 x ResNet
long=(osuleaf_fcn acsf1_fcn osuleaf_resnet screen_detail_osuleaf_fcn screen_coarse_osuleaf_fcn acsf1_resnet)
# one sweep, its finished runs committed; a failed run (failed.json, retried next time) does not stop the queue
sweep_on() {
  nice -n 10 .venv/bin/srblock sweep "$@" --keep-going --after-run sweeps/commit_run.sh ||
    echo "timeseries.sh: srblock sweep $* ended with exit $?; going on" >&2
}
worker() {
  for sweep in "${sweeps[@]}"; do
    sweep_on -c "$sweep"
  done
  # the length and detail screens of RESULTS.md §7 (finished on 2026-12-05: 40 runs in about 3 run-hours)
  for name in length_arrowhead length_osuleaf length_gunpoint detail_arrowhead; do
    sweep_on -c "timeseries_screen_${name}_fcn"
  done
  for pass in "${passes[@]}"; do
    for name in "${long[@]}"; do
      arms=()
      case "$pass:$name" in
        primary:screen_*) ;;
        primary:*) arms=(--arms "${name/_/-},${name/_/-}-sr") ;;
        all:screen_*) continue ;;
      esac
      sweep_on -c "timeseries_$name" "${arms[@]}"
    done
  done
}
worker & sleep 60; worker & wait
