#!/usr/bin/env bash
# The fast CIFAR-10 testbed (issue 11) on a lent GPU: one command that ends within $TIME_BUDGET seconds (+45 s if a run
# outlasts its estimate) and continues where the runs committed under results/cifar10-gpu-fast/ stop. From the
# repository root, on the box's own PyTorch (srblock is not installed there; this script puts src/ on PYTHONPATH):
#
#   OUT=/some/folder bash benchmarks/gpu_sweep.sh            # the default stages: data sweep pack
#   OUT=/some/folder bash benchmarks/gpu_sweep.sh data check bench sweep pack   # a window that also measures speed
#
# The default leaves the whole budget to the sweeps: check and bench are capped at 90 + 120 + 150 + 150 s and would
# take most of a 510 s window (the engine's overhead on an H200 is in results/h200-2026-11-27/; testbed_speed.py's
# whole-run figures have not come back from a window yet); name them when a window should measure the testbed.
#
# Stages, in the order named:
#   data   $DATA_DIR/cifar10-jpeg.tar.xz -> train.npz/test.npz beside it (sha256 checked, decoded once in parallel)
#   check  the CUDA tests of the device-resident data path and of the sync-free train step
#   bench  benchmarks/testbed_speed.py: whole runs per minute (start-up included) of airbench and airbench_sr, alone
#          and in one sweep process (sequential, local:2), each run's accuracy, and the R18 fast recipe against a bare
#          loop -> $OUT/testbed_speed.json, testbed_speed_r18.json; then benchmarks/engine_throughput.py: the engine
#          against a bare loop (same model, batch, data on the device, augmentation) in fp32/TF32 for the R18 and
#          airbench recipes, and torch.compile(mode="reduce-overhead") on airbench with its compile time (the first
#          chunk) -> $OUT/bench.json
#   sweep  the phases of $PHASES, each `srblock sweep --launcher local:$WORKERS --time-budget <seconds left>`: a run
#          starts only if it is expected to end in time (its arm's longest finished run), going seed-major so the arms
#          stay paired; finished runs are skipped, so each window adds seeds. A run's own log is its train.log
#   latency  `srblock sweep -c SWEEP --time-arms` for each sweep of $LATENCY_SWEEPS (default: the blocks sweep,
#          question 6) that has no latency.json yet: every arm's training step and inference forward over its
#          control's on this GPU, into the sweep's latency.json (a few seconds; only when named)
#   pack   every run finished by this command (summary.json, metrics.csv, config.yaml; no checkpoints) and its
#          sweep's sweep.yaml, and each latency.json written by it -> $OUT/gpu_runs.tar.gz, paths relative to the
#          repository root
# All output also goes to $OUT/gpu_sweep.log. Back on the developer's machine:
#   srblock sweep --merge gpu_runs.tar.gz      (never replaces a different run; rebuilds each sweep's table.md)
#
# Environment: OUT (required); TIME_BUDGET (seconds for the whole command, default 510); WORKERS (runs at once on the
# one GPU, default 2); DATA_DIR (default .device/cifar10); PHASES (default below: "SWEEP[@ARM,ARM][:SECONDS]", SECONDS =
# expected length of a run before one has finished); SWEEP_SET (extra `--set key=value` words for every run, e.g. for a
# CPU smoke run); LATENCY_SWEEPS (the latency stage's sweeps); BENCH_SECONDS (cap of engine_throughput, default 150);
# BENCH_ARGS (extra arguments of every engine_throughput part, e.g. "--batch-size 16 --steps 1 --repeats 1" on a CPU);
# TESTBED_ARGS, TESTBED_SECONDS, TESTBED_R18_ARGS, TESTBED_R18_SECONDS (the two testbed_speed parts: arguments and caps,
# defaults below; a window given to the issue-23 figure: TESTBED_ARGS="--recipes cifar10/airbench --runs 40 --alone 2
# --bare 2" TESTBED_SECONDS=400 and the stages "data bench pack"); RESULTS (where pack looks, relative to the repository
# root, default results/cifar10-gpu-fast); STAMP (pack: runs whose summary.json is newer than this file; default: a file
# made when the script starts).
set -u -o pipefail
START=$(date +%s)
OUT="${OUT:?set OUT to the folder that comes back}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
TIME_BUDGET="${TIME_BUDGET:-510}"
WORKERS="${WORKERS:-2}"
DATA_DIR="${DATA_DIR:-.device/cifar10}"
RESULTS="${RESULTS:-results/cifar10-gpu-fast}"
# Issue 21's questions in priority order: 1. the main comparisons (airbench ± SR to 60 pairs, then the paper's ResNet18
# ± SR on the short schedule), 2. placement, 3. capacity, 5. other regularizers, 6. other plug-in blocks. A window
# goes on with the next phase only when the one before has nothing left that fits the time.
PHASES="${PHASES:-cifar10_gpu_fast_airbench_plain@airbench,airbench-sr:40 cifar10_gpu_fast_r18:180 cifar10_gpu_fast_airbench_placement:40 cifar10_gpu_fast_airbench_capacity:40 cifar10_gpu_fast_airbench_robustness:60 cifar10_gpu_fast_airbench_regularizers:40 cifar10_gpu_fast_airbench_blocks:40}"
read -r -a SWEEP_SET_WORDS <<<"${SWEEP_SET:-}"
PACK_SECONDS=20  # kept free for packing
OVERRUN_SECONDS=45  # a run that outlasts its estimate is stopped this long after the sweep's budget (lost, not packed)
BENCH_SECONDS="${BENCH_SECONDS:-150}"  # at most, for engine_throughput (about 100 s on an H100, estimated)
# testbed_speed.py, the issue-23 measure: airbench and airbench_sr as whole runs (estimated 2 x 50 s on an H200), then
# the R18 fast recipe once in a sweep and once as a bare loop (estimated 2 x 50 s); each part capped. Its runs are
# measurements, not seeds of a results sweep (they go to a temporary folder)
TESTBED_SECONDS="${TESTBED_SECONDS:-120}"
TESTBED_ARGS="${TESTBED_ARGS:---recipes cifar10/airbench cifar10/airbench_sr --runs 6 --alone 1 --bare 1 --launchers sequential local:2}"
TESTBED_R18_SECONDS="${TESTBED_R18_SECONDS:-150}"
TESTBED_R18_ARGS="${TESTBED_R18_ARGS:---recipes cifar10/r18_d2d_fast --runs 1 --alone 0 --bare 1}"
if [ -z "${STAMP:-}" ]; then
  STAMP="$(mktemp)"
fi
mkdir -p "$OUT"

left() { echo $((START + TIME_BUDGET - $(date +%s))); }

stage_data() {
  python3 - "$DATA_DIR" <<'EOF'
import sys
import time

import torch

from srblock.data.cifar import load_cifar

print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "(no GPU)")
start = time.perf_counter()
x, _, tx, _ = load_cifar("cifar10", sys.argv[1])
print(f"cifar10 in {sys.argv[1]}: {len(x)} train and {len(tx)} test images ({time.perf_counter() - start:.1f} s)")
EOF
}

stage_check() {
  timeout 90 python3 -m pytest -q -p no:cacheprovider -rfEs tests/data/test_loader.py tests/engine/test_trainer.py \
    -k cuda
}

stage_bench() {
  # whole runs per minute, start-up included, beside a bare loop, with accuracy and equality to runs alone
  # shellcheck disable=SC2086  # TESTBED_ARGS and TESTBED_R18_ARGS are word lists
  timeout "$TESTBED_SECONDS" python3 benchmarks/testbed_speed.py --data-dir "$DATA_DIR" \
    --out "$OUT/testbed_speed.json" $TESTBED_ARGS
  echo "== bench testbed_speed: exit $?"
  # shellcheck disable=SC2086
  timeout "$TESTBED_R18_SECONDS" python3 benchmarks/testbed_speed.py --data-dir "$DATA_DIR" \
    --out "$OUT/testbed_speed_r18.json" $TESTBED_R18_ARGS
  echo "== bench testbed_speed r18: exit $?"
  timeout "$BENCH_SECONDS" python3 - "$OUT/bench.json" ${BENCH_ARGS:-} <<'EOF'
import json
import sys
import time

sys.path.insert(0, "benchmarks")
import engine_throughput  # noqa: E402

parts = {  # the engine's overhead (plain-SGD recipes), then airbench eager and under CUDA graphs
    "r18_d2d_sr_b128_fp32": ["--recipe", "cifar10/r18_d2d_sr", "--batch-size", "128"],  # 0.837x on 2026-11-26
    "r18_d2d_fast_sr_fp32": ["--recipe", "cifar10/r18_d2d_fast_sr", "--steps", "10"],
    "airbench_d2d_sr_fp32": ["--recipe", "cifar10/airbench_d2d_sr"],
    "airbench_d2d_sr_reduce_overhead": ["--recipe", "cifar10/airbench_d2d_sr", "--compile", "reduce-overhead"],
}
results, started = {}, time.perf_counter()
for name, argv in parts.items():
    print(f"== bench {name}: {' '.join(argv)}", flush=True)
    try:
        results[name] = engine_throughput.main(["--repeats", "8", *argv, *sys.argv[2:]])
    except Exception as err:  # keep the other parts
        results[name] = {"error": f"{type(err).__name__}: {err}"}
        print(f"{name} failed: {err}", flush=True)
    results["seconds"] = time.perf_counter() - started
    with open(sys.argv[1], "w") as f:
        json.dump(results, f, indent=2)
EOF
}

stage_sweep() {
  local phase sweep arms seconds budget
  for phase in $PHASES; do
    seconds="${phase##*:}"
    [ "$seconds" = "$phase" ] && seconds=60
    phase="${phase%:*}"
    sweep="${phase%@*}"
    arms=()
    [ "$sweep" != "$phase" ] && arms=(--arms "${phase#*@}")
    budget=$(($(left) - PACK_SECONDS))
    if [ "$budget" -lt 20 ]; then
      echo "== sweep $phase: ${budget} s left, not started"
      continue
    fi
    echo "== sweep $phase: $WORKERS workers, ${budget} s"
    # the budget keeps runs from starting late; the timeout only guards against an estimate gone wrong
    timeout --signal=TERM "$((budget + OVERRUN_SECONDS))" python3 -m srblock sweep -c "$sweep" "${arms[@]}" \
      --launcher "local:$WORKERS" --time-budget "$budget" --run-seconds "$seconds" --set "data.root=$DATA_DIR" \
      "${SWEEP_SET_WORDS[@]}"
    echo "== sweep $phase: exit $?"
  done
}

stage_latency() {
  local sweep output
  for sweep in ${LATENCY_SWEEPS:-cifar10_gpu_fast_airbench_blocks}; do
    output="$(python3 -c 'import sys; from srblock.experiments import load_sweep as l; print(l(sys.argv[1]).output)' \
      "$sweep")"
    if [ -f "$output/latency.json" ]; then  # a second measurement would clash with the first when merged home
      echo "== latency $sweep: $output/latency.json exists (move it away to measure again)"
      continue
    fi
    timeout 180 python3 -m srblock sweep -c "$sweep" --time-arms --set "data.root=$DATA_DIR" "${SWEEP_SET_WORDS[@]}"
    echo "== latency $sweep: exit $?"
  done
}

stage_pack() {
  local list
  list="$(mktemp)"
  {
    find "$RESULTS" -name summary.json -newer "$STAMP" 2>/dev/null | sort | while read -r summary; do
      run="$(dirname "$summary")"
      for name in summary.json metrics.csv config.yaml; do
        [ -f "$run/$name" ] && echo "$run/$name"
      done
      [ -f "$run/../../sweep.yaml" ] && realpath --relative-to=. "$run/../../sweep.yaml"
    done
    find "$RESULTS" -name latency.json -newer "$STAMP" 2>/dev/null | while read -r latency; do
      echo "$latency"
      [ -f "$(dirname "$latency")/sweep.yaml" ] && echo "$(dirname "$latency")/sweep.yaml"
    done
  } | sort -u >"$list"
  echo "== pack: $(grep -c 'summary.json$' "$list") new runs -> $OUT/gpu_runs.tar.gz"
  tar czf "$OUT/gpu_runs.tar.gz" -T "$list"
  rm -f "$list"
}

main() {
  local stages=("$@")
  [ ${#stages[@]} -eq 0 ] && stages=(data sweep pack)  # check and bench only when named (see the top)
  echo "budget ${TIME_BUDGET} s, ${WORKERS} workers, data ${DATA_DIR}, phases: ${PHASES}"
  for stage in "${stages[@]}"; do
    case "$stage" in
      data | check | bench | latency | sweep | pack) ;;
      *) echo "unknown stage $stage (data, check, bench, latency, sweep, pack)" >&2; return 2 ;;
    esac
    echo "== $stage ($(left) s left)"
    "stage_$stage"
    echo "== $stage: exit $? ($(left) s left)"
  done
}

main "$@" 2>&1 | tee -a "$OUT/gpu_sweep.log"
