"""End-to-end speed (MPix/s) and peak memory of the bundled models, in one run.

    python benchmarks/speed.py [--models NAME ...] [--repeats 3]

For each model and each input — a 2048 x 2048 16-bit image and a 20 x 512 x 512 stack of
crowded synthetic nuclei — a fresh process loads the model, segments the input (tiles,
post-processing, z-linking) and reports the median time of ``--repeats`` runs and its peak
resident memory. For comparison, torchvision's stock ``maskrcnn_resnet50_fpn`` (random
weights: speed does not depend on them) runs at native resolution (no rescaling to 800 px)
with its default settings. Prints a table; quote medians measured in one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_image_memory import synthetic_nuclei  # noqa: E402

BUNDLED = ("maskrcnn-nuclei", "unet-nuclei", "maskrcnn-phasecells", "unet-phasecells")
STOCK = "torchvision-maskrcnn_resnet50_fpn"
INPUTS = {"2048x2048": (None, 2048), "20x512x512": (20, 512)}


def make_input(name: str):
    import numpy as np

    planes, size = INPUTS[name]
    if planes is None:
        return synthetic_nuclei(size, seed=1), "YX"
    return np.stack([synthetic_nuclei(size, seed=z) for z in range(planes)]), "ZYX"


def run_stock(image) -> None:
    """torchvision's maskrcnn_resnet50_fpn at native resolution, one forward per plane."""
    import numpy as np
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    size = image.shape[-1]
    network = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=size, max_size=size).eval()
    planes = image.reshape(-1, *image.shape[-2:]).astype(np.float32)
    with torch.inference_mode():
        for plane in planes:
            scaled = torch.from_numpy(plane / max(float(plane.max()), 1.0))
            network([scaled.expand(3, -1, -1)])


def one(model: str, input_name: str, repeats: int) -> dict:
    """Time ``model`` on one input in this process; returns the measurements."""
    from napari_unet_maskrcnn import api

    image, axes = make_input(input_name)
    if model == STOCK:
        call = lambda: run_stock(image)  # noqa: E731
    else:
        task = api.get_model_spec(model).task
        run = api.segment_instances if task == "instances" else api.segment_semantic
        call = lambda: run(image, model, axes=axes, device="cpu")  # noqa: E731
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "model": model, "input": input_name, "seconds": seconds,
        "mpix_per_s": image.size / 1e6 / seconds,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[*BUNDLED, STOCK])
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "INPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.repeats)))
        return 0
    print(f"{'model':36s} {'input':12s} {'median s':>9s} {'MPix/s':>8s} {'peak GB':>8s}")
    for model in args.models:
        for input_name in args.inputs:
            done = subprocess.run(
                [sys.executable, __file__, "--one", model, input_name, "--repeats", str(args.repeats)],
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                print(f"{model:36s} {input_name:12s} failed: {done.stderr.strip().splitlines()[-1]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{model:36s} {input_name:12s} {row['seconds']:9.2f} {row['mpix_per_s']:8.2f} "
                  f"{row['peak_gb']:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
