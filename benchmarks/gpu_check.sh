#!/usr/bin/env bash
# The project's one-shot check on a lent GPU box (device tool), run from the repository root on the box's own
# PyTorch (no install: PYTHONPATH=src). Everything it reports goes to $OUT (at most 8 files come back).
#   1. the default test suite on this torch/torchvision (CUDA-only tests run here, nowhere else);
#   2. benchmarks/run_all.py: SR/SE/CBAM latency ratios on ResNet50@224 and engine vs bare-loop throughput;
#   3. the engine end to end on CUDA under torchrun (NCCL, bf16, channels_last) for 2 epochs;
#   4. sweeps/cifar10_gpu_subset.yaml for whatever time is left (seed-major, so finished runs come in pairs).
# Data: a CIFAR-10 subset in .device/cifar10 (train.npz: 1,200 images per class, seed 0; test.npz: the full test
# set), made on the developer's machine and named in the device tool's `carry`.
# Usage: bash benchmarks/gpu_check.sh [SWEEP_SECONDS]
set -u
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
OUT="${OUT:?set OUT to the folder that comes back}"
sweep_seconds="${1:-240}"
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())" \
  | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$OUT/env.txt"

timeout 240 python3 -m pytest -m "not slow" -q -n 8 -p no:cacheprovider >"$OUT/tests.txt" 2>&1
echo "tests: exit $?"; tail -n 3 "$OUT/tests.txt"

timeout 240 python3 benchmarks/run_all.py --device cuda --out "$OUT/bench.json" >"$OUT/bench.txt" 2>&1
echo "bench: exit $?"; tail -n 40 "$OUT/bench.txt"

timeout 120 torchrun --standalone --nproc_per_node=1 -m srblock.cli train -c configs/cifar10/r18_d2d_sr.yaml \
  --data-dir .device/cifar10 --epochs 2 --amp bf16 --set train.channels_last=true --output /tmp/gpu-run \
  >"$OUT/engine.txt" 2>&1
echo "engine: exit $?"; tail -n 8 "$OUT/engine.txt"; cp /tmp/gpu-run/summary.json "$OUT/engine_summary.json"

timeout "$sweep_seconds" python3 -m srblock.cli sweep -c sweeps/cifar10_gpu_subset.yaml >"$OUT/sweep.txt" 2>&1
echo "sweep: exit $?"
python3 -m srblock.cli sweep --report results/cifar10-gpu-subset/r18-d2d-m3p10 >>"$OUT/sweep.txt" 2>&1
tail -n 20 "$OUT/sweep.txt"
tar czf "$OUT/gpu_results.tgz" --exclude='*.pt' results/cifar10-gpu-subset
