#!/usr/bin/env bash
# The CPU-scale CIFAR-10 reproduction (RESULTS.md): pair 1 first (the priority), then pair 2, at low priority,
# committing each finished run. Resumable: run the same command again and finished runs are skipped.
#   nohup sweeps/cifar10_cpu.sh > results/cifar10-cpu/sweep.log 2>&1 &
set -eu
cd "$(dirname "$0")/.."
for sweep in sweeps/cifar10_cpu_d2d.yaml sweeps/cifar10_cpu_plain.yaml; do
  nice -n 10 .venv/bin/srblock sweep -c "$sweep" --after-run sweeps/commit_run.sh
done
