#!/usr/bin/env bash
# The CPU-scale CIFAR-10 reproduction (RESULTS.md), in priority order, at low priority, committing each finished
# run (sweeps/commit_run.sh): the 300-iteration protocol for pair 1, then the 3-epoch protocol for pair 1 and
# pair 2, then the 300-iteration protocol for pair 2. Resumable: run the same command again and finished runs are
# skipped, an interrupted one continues from its checkpoint_last.pt.
#   nohup sweeps/cifar10_cpu.sh > /tmp/cifar10_cpu_sweep.log 2>&1 &
# One intra-op thread: on 2 cores shared with other jobs, two OpenMP threads spin-wait for each other and cost
# ~12x more CPU time per step (measured: 1585 vs 131 ms CPU per step at load ~12); on an idle machine drop it.
set -eu
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
for sweep in cifar10_cpu_d2d cifar10_cpu_3ep_d2d cifar10_cpu_3ep_plain cifar10_cpu_plain; do
  nice -n 10 .venv/bin/srblock sweep -c "$sweep" --keep-going --after-run sweeps/commit_run.sh ||
    echo "cifar10_cpu.sh: $sweep ended with exit $?; going on" >&2  # a failed run is retried on the next start
done
