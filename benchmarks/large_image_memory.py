"""Peak memory and speed of tiled segmentation on one large 16-bit image.

    python benchmarks/large_image_memory.py --arch unet --size 8192
    python benchmarks/large_image_memory.py --arch maskrcnn --size 8192

Each run is a fresh process, so the peak resident memory (ru_maxrss) is the run's own. The
model is full-size (U-Net depth 4 / width 32; Mask R-CNN resnet18-FPN 256) with random
weights unless --model is given: memory depends on the architecture and tile size, not on
what the weights learned. Prints one line: arch, image size, tile, seconds, MPix/s, peak GB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_nuclei(size: int, seed: int = 0) -> np.ndarray:
    """uint16 (size, size): dim background with bright discs of radius 6-12 px, about one per 40x40 px."""
    rng = np.random.default_rng(seed)
    image = rng.normal(400, 40, (size, size)).clip(0, 65535).astype(np.uint16)
    yy, xx = np.mgrid[-12:13, -12:13]
    for _ in range(size * size // 1600):
        y, x = rng.integers(12, size - 12, 2)
        radius = rng.uniform(6, 12)
        patch = image[y - 12:y + 13, x - 12:x + 13]
        patch[(yy ** 2 + xx ** 2) <= radius ** 2] = rng.integers(3000, 20000)
    return image


def full_size_model(arch: str, folder: Path) -> Path:
    from napari_unet_maskrcnn.core.model_file import ModelSpec, build_network, save_model

    if arch == "unet":
        spec = ModelSpec("unet", {"depth": 4, "base_width": 32}, ["background", "nucleus", "boundary"], 1)
    else:
        spec = ModelSpec("maskrcnn", {"backbone": "resnet18"}, ["nucleus"], 1)
    return save_model(folder / f"{arch}.safetensors", build_network(spec), spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["unet", "maskrcnn"], default="unet")
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--model", help="a model file instead of a random full-size one")
    args = parser.parse_args()

    from napari_unet_maskrcnn import api

    image = synthetic_nuclei(args.size)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or full_size_model(args.arch, Path(folder))
        run = api.segment_semantic if args.arch == "unet" else api.segment_instances
        last = [0.0]

        def report(event):
            now = time.perf_counter()
            if now - last[0] > 30:
                last[0] = now
                print(f"  {event.done}/{event.total} tiles", file=sys.stderr, flush=True)

        start = time.perf_counter()
        run(image, model, tile=args.tile, device="cpu", on_progress=report)
        seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    mpix = args.size * args.size / 1e6
    print(f"{args.arch:9s} {args.size}x{args.size} uint16 tile {args.tile}: {seconds:8.1f} s  "
          f"{mpix / seconds:6.2f} MPix/s  peak RSS {peak_gb:5.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
