#!/usr/bin/env bash
# Issue 21's CPU sweeps ("where does SR help?", docs/guide/questions.md) in priority order, at low priority, each
# finished run committed (sweeps/commit_run.sh): placement, then capacity, on the w25 protocol (the paper tabulates
# their arms), then the issue's other questions, distribution shift, other regularizers and other cheap blocks, then the
# follow-ups: AdamW +- SR (does a routing that learns help?) and last confirmatory tests of the three-block arm and of
# ECA on fresh seeds 8-23 (cifar10_cpu_w25_confirm, 48 runs, each test fixed before its first run). 8 paired seeds an
# arm (the AdamW, regularizer and block sweeps copy their SGD baseline and SR runs from cifar10_cpu_w25: reuse); a w25
# run takes 8-27 min on two cores (a robustness run about 3.5 min more), so the queue spans sessions: --status below
# says what is left and how long it takes. Never edit this file while it runs (bash reads it as it goes).
# Resumable: run the same command again; finished runs are skipped, an interrupted one continues from its
# checkpoint_last.pt. Two runs at a time, one thread each (`--launcher local:$WORKERS`, default 2; each worker gets an
# equal share of the cores): on these 2 cores two one-thread runs train 1.20-1.61x the SGD steps per second of one run
# on both cores (4 rounds of `benchmarks/cpu_workers.py --set model.width=0.25`, 2026-12-07); whole blocks-sweep runs
# took 832-861 s (ECA, SE, SE+SR) and 1223-1244 s (CBAM) one thread beside another, against 571-602 s and 878-897 s one
# at a time on two threads: 1.4x the runs per hour. WORKERS=1 trains one run on both cores, as every run before
# 2026-12-07 was trained:
#   nohup sweeps/where_sr_helps.sh > /tmp/where_sr_helps.log 2>&1 &
# What is left, step by step (each step's dry run: runs done and to run, time left; nothing trains):
#   sweeps/where_sr_helps.sh --status
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") status=false ;;
  --status) status=true ;;
  *) echo "where_sr_helps.sh: expected no argument or --status, got '$1'" >&2; exit 2 ;;
esac
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
workers="${WORKERS:-2}"
single=r18-d2d-sr-m1,r18-d2d-sr-m2,r18-d2d-sr-m4  # with r18-d2d-sr (M=3, 8 seeds) the levels of the depth trend
several=r18-d2d-sr-m34,r18-d2d-sr-m234
capacity=r18-d2d-sr-p1,r18-d2d-sr-p2,r18-d2d-sr-p4,r18-d2d-sr-p32,r18-d2d-sr-p100,r18-d2d-sr-u4,r18-d2d-sr-u16,r18-d2d-sr-u64
# Placement to 8 seeds before capacity (one question answered sessions sooner than both at once), its single-block
# arms first (the depth trend, `srblock trend`, reads them); each group seed-major
# --keep-going: a run that fails (its failed.json says why; it is retried on the next start) does not stop the queue
# of the night, and neither does a sweep that ends with failed runs
step() {  # srblock sweep ARGS: its runs, each committed, or with --status what it has left
  if $status; then
    echo "== srblock sweep $*"
    .venv/bin/srblock sweep "$@" --dry-run | grep -E "^[0-9]+ runs:|^time left" || true
    return
  fi
  nice -n 10 .venv/bin/srblock sweep "$@" --launcher "local:$workers" --keep-going --after-run sweeps/commit_run.sh ||
    echo "where_sr_helps.sh: srblock sweep $* ended with exit $?; going on" >&2
}
for arms in "$single" "$several" "$capacity"; do
  step -c cifar10_cpu_w25 --arms "$arms"
done
for sweep in cifar10_cpu_w25_robustness cifar10_cpu_w25_regularizers cifar10_cpu_w25_blocks cifar10_cpu_w25_adamw \
  cifar10_cpu_w25_confirm; do
  step -c "$sweep"
done
