"""Segmentation check for a GPU (not collected by pytest): the paper-size DeepLabV3-R50 + SR trains and slides.

Five bf16 training steps at the 512x1024 crop (SR memory 2x1024x64x128), slide inference of a 1024x2048 frame, and
the clear error of whole-image inference on a strict SR model; prints step times and peak memory.

    python benchmarks/segmentation_gpu_check.py            # cuda, paper size
    python benchmarks/segmentation_gpu_check.py cpu 8      # CPU, sizes divided by 8
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

from srblock.engine.segmentation import segment
from srblock.models import create_model


def main(device: str = "cuda", scale: int = 1) -> None:
    crop = (512 // scale, 1024 // scale)
    frame = (1024 // scale, 2048 // scale)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model = create_model(
        "deeplabv3_resnet50", num_classes=19, sr_stage=3, num_memories=2, hidden=16, input_size=(3, *crop)
    ).to(device)
    print("SR memory", tuple(model.backbone.layer3.sr.memory.shape))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(2, 3, *crop, device=device), torch.randint(0, 19, (2, *crop), device=device)
    for i in range(5):
        sync()
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16):
            out = model(x)
        loss = F.cross_entropy(out["out"].float(), y) + 0.4 * F.cross_entropy(out["aux"].float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        grad = bool(model.backbone.layer3.sr.memory.grad.abs().sum() > 0)
        print(f"step {i}: {time.perf_counter() - start:.3f}s loss {loss.item():.3f} memory has gradient: {grad}")
    model.eval()
    image = torch.randn(1, 3, *frame, device=device)
    sync()
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        logits = segment(model, image, crop_size=crop)
    sync()
    print(f"slide {tuple(logits.shape)} {logits.dtype} {time.perf_counter() - start:.3f}s")
    try:
        segment(model, image, mode="whole", crop_size=crop)
    except ValueError as err:
        print("whole on strict SR ->", str(err)[:100], "...")
    if device == "cuda":
        print(f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, torch {torch.__version__}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cuda", int(sys.argv[2]) if len(sys.argv) > 2 else 1)
