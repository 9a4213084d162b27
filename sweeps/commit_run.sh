#!/usr/bin/env bash
# `srblock sweep --after-run sweeps/commit_run.sh`: commit one finished run (summary.json, metrics.csv,
# config.yaml) and the refreshed tables and trends, and nothing else, so an interrupted sweep continues where it
# stopped.
# Safe in a checkout shared with others: `git commit -- <paths>` commits only these paths; retried on index.lock.
set -u
out="${SRBLOCK_SWEEP_OUTPUT:?run me from srblock sweep --after-run}"
run="${SRBLOCK_RUN_DIR:?}"
paths=("$run" "$out/results.csv" "$out/table.md" "$out/sweep.yaml")
[ -f "$out/.srblock-owned.json" ] && paths+=("$out/.srblock-owned.json")  # what srblock wrote there
# the tables of its report_metrics, the trends the sweep file declares and the corruption benchmark's robustness.md,
# refreshed with the table
for extra in "$out"/table-*.md "$out"/trend-*.md "$out"/trend-*.png "$out"/robustness.md; do
  [ -f "$extra" ] && paths+=("$extra")
done
for _ in $(seq 1 20); do
  if git add -- "${paths[@]}" 2>/dev/null &&
    git commit -q -m "results: ${SRBLOCK_SWEEP_NAME:-sweep} ${SRBLOCK_RUN_ARM:-} seed ${SRBLOCK_RUN_SEED:-}" -- "${paths[@]}"; then
    exit 0
  fi
  sleep 3
done
echo "commit_run.sh: could not commit ${paths[*]}" >&2
exit 1
