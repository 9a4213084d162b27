#!/usr/bin/env bash
# The project's check on a lent GPU box (device tool), from the repository root on the box's own PyTorch (no install:
# PYTHONPATH=src). Each stage writes to $OUT (at most 8 files come back); name the stages to run, in order:
#   tests    the default test suite on this torch/torchvision (CUDA-only tests run here, nowhere else)
#   bench    benchmarks/run_all.py: SR/SE/CBAM latency ratios on ResNet50@224, engine vs bare-loop throughput
#   profile  benchmarks/sr_block_profile.py: the block's kernels, device vs wall time, eager vs torch.compile
#   seg      benchmarks/segmentation_gpu_check.py: paper-size DeepLabV3-R50+SR bf16 steps and slide inference
#   engine   the engine end to end under torchrun (NCCL, bf16, channels_last), 2 epochs on the CIFAR-10 subset
#   sweep    cifar10_gpu_subset for SWEEP_SECONDS (default 240; seed-major, runs finish in pairs)
# Data for engine/sweep: a CIFAR-10 subset in .device/cifar10 (train.npz: 1,200 images per class drawn with numpy
# seed 0; test.npz: the full test set), made on the developer's machine and named in the device tool's `carry`.
# Usage: bash benchmarks/gpu_check.sh tests bench engine sweep
set -u
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
OUT="${OUT:?set OUT to the folder that comes back}"
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())" \
  | tee "$OUT/env.txt"
for stage in "$@"; do
  case "$stage" in
    tests)
      timeout 240 python3 -m pytest -m "not slow" -q -n 14 -p no:cacheprovider -p no:benchmark -rfE \
        >"$OUT/tests.txt" 2>&1 ;;
    bench) timeout 240 python3 benchmarks/run_all.py --device cuda --out "$OUT/bench.json" >"$OUT/bench.txt" 2>&1 ;;
    profile) timeout 120 python3 benchmarks/sr_block_profile.py --device cuda --out "$OUT/profile.json" \
        >"$OUT/profile.txt" 2>&1 ;;
    seg) timeout 120 python3 benchmarks/segmentation_gpu_check.py cuda >"$OUT/seg.txt" 2>&1 ;;
    engine)
      timeout 120 torchrun --standalone --nproc_per_node=1 -m srblock train -c cifar10/r18_d2d_sr \
        --data-dir .device/cifar10 --epochs 2 --amp bf16 --set train.channels_last=true --output /tmp/gpu-run \
        >"$OUT/engine.txt" 2>&1 ;;
    sweep)
      timeout "${SWEEP_SECONDS:-240}" python3 -m srblock sweep -c cifar10_gpu_subset >"$OUT/sweep.txt" 2>&1
      python3 -m srblock sweep --report results/cifar10-gpu-subset/r18-d2d-m3p10 >>"$OUT/sweep.txt" 2>&1
      tar czf "$OUT/gpu_results.tgz" --exclude='*.pt' results/cifar10-gpu-subset ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
  echo "== $stage: exit $?"; tail -n 25 "$OUT/$stage.txt" 2>/dev/null
done
