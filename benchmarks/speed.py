"""End-to-end speed of the bundled models, and of maskrcnn-nuclei against torchvision's stock Mask R-CNN.

    python benchmarks/speed.py [--repeats 3] [--table] [--models NAME ...]

First the CPU (model name and the SIMD flags that matter: AVX2, AVX-512, bf16, AMX) and the
torch thread count. Then, in this one process and on one crowded 1024 x 1024 16-bit image
of synthetic nuclei (655 discs), ``maskrcnn-nuclei`` end to end (``segment_instances``:
tiles, network, mask pasting, overlap resolution) against torchvision's stock
``maskrcnn_resnet50_fpn`` (random weights: speed does not depend on them; ``min_size`` =
``max_size`` = 1024 so nothing is resized; ``box_detections_per_img`` 1000 so the crowded
image is not capped at 100 objects, and its default 100 for reference), each timed in
interleaved rounds; prints the medians and the speed ratio (> 1: ours is faster).

With ``--table``, for each model and each input — a 2048 x 2048 16-bit image and a 20 x 512 x 512 stack of
crowded synthetic nuclei — a fresh process loads the model, segments the input (tiles,
post-processing, z-linking) and reports the median time of ``--repeats`` runs and its peak
resident memory. For comparison, torchvision's stock ``maskrcnn_resnet50_fpn`` (random
weights: speed does not depend on them) runs at native resolution (no rescaling to 800 px)
with its default settings. Prints a table; quote medians measured in one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
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


def stock_network(size: int, detections: int = 100):
    """torchvision's maskrcnn_resnet50_fpn, random weights, that does not resize a ``size`` image."""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    return maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=size, max_size=size, box_detections_per_img=detections
    ).eval()


def run_stock(image, detections: int = 100, network=None) -> int:
    """Stock Mask R-CNN at native resolution, one forward per plane; returns the detections of the last."""
    import numpy as np
    import torch

    network = network or stock_network(max(image.shape[-2:]), detections)
    planes = image.reshape(-1, *image.shape[-2:]).astype(np.float32)
    with torch.inference_mode():
        for plane in planes:
            scaled = torch.from_numpy(plane / max(float(plane.max()), 1.0))
            (result,) = network([scaled.expand(3, -1, -1)])
    return len(result["boxes"])


def cpu_description() -> str:
    """CPU model, its SIMD flags that decide fp32/bf16 speed, and torch's thread count."""
    import platform

    import torch

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
    except OSError:
        pass
    simd = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    return (f"CPU: {model}, {os.cpu_count()} logical cores, flags: {' '.join(simd) or 'unknown'}; "
            f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")


def compare_with_stock(repeats: int, size: int = 1024) -> None:
    """Median end-to-end seconds of maskrcnn-nuclei and of the stock model on one crowded image, and their ratio."""
    from napari_unet_maskrcnn import api

    image = synthetic_nuclei(size, seed=1)
    api.segment_instances(image[:256, :256], "maskrcnn-nuclei", device="cpu")  # load the model once
    runs = {
        "maskrcnn-nuclei": lambda: int(api.segment_instances(image, "maskrcnn-nuclei", device="cpu").labels.max()),
        "stock, 1000 detections": functools.partial(run_stock, image, network=stock_network(size, 1000)),
        "stock, default 100 detections": functools.partial(run_stock, image, network=stock_network(size, 100)),
    }
    times, found = {name: [] for name in runs}, {}
    for _ in range(repeats):  # interleaved, so a changing background load hits all alike
        for name, call in runs.items():
            start = time.perf_counter()
            found[name] = call()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    ours = median["maskrcnn-nuclei"]
    print(f"{size}x{size} crowded synthetic nuclei, median of {repeats} interleaved runs:")
    for name in runs:
        print(f"  {name:32s} {median[name]:8.2f} s  {found[name]:5d} objects/detections  "
              f"speed of maskrcnn-nuclei relative to it: {median[name] / ours:.2f}x", flush=True)


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
    parser.add_argument("--table", action="store_true", help="also the per-model table (fresh processes)")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "INPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.repeats)))
        return 0
    from napari_unet_maskrcnn.core.device import configure_threads

    configure_threads()
    print(cpu_description())
    compare_with_stock(max(args.repeats, 3))
    if not args.table:
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
