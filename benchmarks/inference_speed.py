"""Inference speed on this machine: Mask R-CNN against stock torchvision, U-Nets against the fp32 matmul rate.

    python benchmarks/inference_speed.py [--repeats 3] [--sizes 1024 2048] [--skip-peak]

Prints, in one process (numbers are comparable only within one run on one machine):

1. the CPU (model name, SIMD flags, torch threads) and this machine's fp32 (and bf16)
   matrix-multiply rate, ``torch.mm`` of 2048 x 2048 matrices, median of 5;
2. ``maskrcnn-nuclei`` end to end through ``api.segment_instances`` (default tile, object size,
   mask pasting, overlap resolution) with its defaults (precision ``"auto"``: the mask head in
   bfloat16 where the CPU computes it natively), then at native scale (``diameter=0``: on this
   synthetic image the automatic size estimate is unsure and wrong, docs/OBJECT_SIZE.md) with
   the default precision, in float32 and, where the CPU computes bfloat16 natively, with
   ``"bf16"`` (bfloat16 autocast throughout),
   against torchvision's stock ``maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)``
   (random weights: speed does not depend on them) given the same pixels (``min_size`` =
   ``max_size`` = the image side, so it does not shrink the image to 800 px) and its default
   100 detections, on a crowded synthetic 16-bit nuclei image (``large_image_memory.synthetic_nuclei``,
   one disc per 40 x 40 px) of each ``--sizes``; rounds interleaved, medians of ``--repeats``;
3. each bundled U-Net on one 1024 x 1024 tile, network only (float32 and bfloat16 autocast):
   MPix/s, its convolutions' GFLOP (counted from the layers' shapes) per second, and that
   rate as a fraction of the fp32 matmul rate measured in the same interleaved rounds (the
   faster of ``torch.mm`` and a oneDNN 1 x 1 convolution of the same shape class); and end to end
   (``api.segment_semantic`` on the 2048 x 2048 image, default settings, and with the former
   default 512 px tiles) in MPix/s;
4. unless ``--skip-peak``: the peak resident memory of a fresh process running each bundled
   model end to end on the 2048 x 2048 image with its defaults.

Benchmarks are scripts, not tests: quote the medians, with the CPU line.
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
from speed import cpu_description  # noqa: E402

UNETS = ("unet-nuclei", "unet-phasecells", "unet-tissue")
MATMUL_SIDE = 2048


def matmul_gflops(dtype_name: str = "float32", side: int = MATMUL_SIDE, repeats: int = 5) -> float:
    """Median GFLOP/s of ``torch.mm`` on two ``side x side`` matrices of ``dtype``."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(side, side).to(dtype), torch.randn(side, side).to(dtype)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * side**3 / statistics.median(times) / 1e9


def gemm_conv_gflops(dtype_name: str = "float32", repeats: int = 5) -> float:
    """Median GFLOP/s of a matrix multiply run by oneDNN: a 1 x 1 convolution, 1024 -> 1024
    channels on 64 x 64 pixels (a 4096 x 1024 by 1024 x 1024 product), channels-last.

    torch.mm goes to MKL, which on AMD CPUs can take a slower code path than oneDNN's
    convolutions; the U-Nets' rate is compared with the faster of the two.
    """
    import torch

    conv = torch.nn.Conv2d(1024, 1024, 1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(1, 1024, 64, 64).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype_name == "bfloat16"):
        conv(x)
        for _ in range(repeats):
            start = time.perf_counter()
            conv(x)
            times.append(time.perf_counter() - start)
    return 2 * 4096 * 1024 * 1024 / statistics.median(times) / 1e9


def stock_network(size: int):
    """torchvision's stock Mask R-CNN with random weights, not resizing a ``size`` image."""
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=size, max_size=size).eval()


def run_stock(network, image) -> int:
    """Stock Mask R-CNN end to end on one uint16 plane (scaled to 0..1, three channels)."""
    import numpy as np
    import torch

    plane = image.astype(np.float32)
    with torch.inference_mode():
        (result,) = network([torch.from_numpy(plane / max(float(plane.max()), 1.0)).expand(3, -1, -1)])
    return len(result["boxes"])


def maskrcnn_against_stock(sizes: list[int], repeats: int) -> None:
    import functools

    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.api.runs import auto_tile
    from napari_unet_maskrcnn.core.device import inference_dtype
    from napari_unet_maskrcnn.core.settings import SEGMENT_SETTINGS

    def ours(image, precision=None, tile=None, diameter=None):
        options = {} if precision is None else {"precision": precision}
        return int(api.segment_instances(image, "maskrcnn-nuclei", device="cpu", tile=tile, diameter=diameter,
                                         **options).labels.max())

    api.segment_instances(synthetic_nuclei(256, seed=0), "maskrcnn-nuclei", device="cpu")  # load once
    native_bf16 = inference_dtype("auto", "cpu") is not None
    default = SEGMENT_SETTINGS["precision"].default
    print(f"maskrcnn-nuclei default tile {auto_tile(None, 'maskrcnn-nuclei')} px, default precision {default}"
          + (" (bf16 mask head)" if native_bf16 else " (no native bfloat16 here: float32, bf16 not timed)"))
    for size in sizes:
        image = synthetic_nuclei(size, seed=1)
        runs = {f"maskrcnn-nuclei, defaults ({default})": functools.partial(ours, image),
                "  same, diameter 0 (native scale)": functools.partial(ours, image, None, None, 0),
                "  float32, diameter 0": functools.partial(ours, image, "fp32", None, 0)}
        if native_bf16:
            runs["  bf16 autocast, diameter 0"] = functools.partial(ours, image, "bf16", None, 0)
        runs["stock maskrcnn_resnet50_fpn"] = functools.partial(run_stock, stock_network(size), image)
        times, found = {name: [] for name in runs}, {}
        for _ in range(repeats):  # interleaved: a changing background load hits every run alike
            for name, call in runs.items():
                start = time.perf_counter()
                found[name] = call()
                times[name].append(time.perf_counter() - start)
        stock = statistics.median(times["stock maskrcnn_resnet50_fpn"])
        print(f"{size} x {size} crowded synthetic nuclei ({size * size // 1600} discs), "
              f"median of {repeats} interleaved runs:")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:34s} {median:8.2f} s  {size * size / 1e6 / median:6.3f} MPix/s  "
                  f"{found[name]:5d} objects/detections  speed vs stock {stock / median:5.2f}x  "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)})", flush=True)


def conv_flops(network, shape) -> float:
    """Multiply-add FLOPs (2 per MAC) of the convolutions and linear layers in one forward of ``shape``."""
    import torch

    total = [0.0]

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            total[0] += 2.0 * output.numel() * kernel
        elif isinstance(module, torch.nn.ConvTranspose2d):
            total[0] += 2.0 * inputs[0].numel() * module.weight[0].numel()
        elif isinstance(module, torch.nn.Linear):
            total[0] += 2.0 * output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in network.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    try:
        with torch.inference_mode():
            network(torch.zeros(shape).contiguous(memory_format=torch.channels_last))
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


def unets(repeats: int, fp32_rate: float, bf16_rate: float | None, tile: int = 1024) -> None:
    import numpy as np
    import torch

    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.core.registry import load_model

    image = synthetic_nuclei(tile, seed=1).astype(np.float32)
    image = (image - image.min()) / (np.percentile(image, 99.8) - image.min())
    big = synthetic_nuclei(2048, seed=1)
    print(f"U-Nets, network only on one {tile} x {tile} tile (median of {repeats}); end to end on 2048 x 2048 "
          f"(default settings, median of {repeats}):")
    for name in UNETS:
        spec, network = load_model(name, "cpu")
        batch = torch.from_numpy(np.repeat(image[None, None], spec.in_channels, 1)).contiguous(
            memory_format=torch.channels_last)
        flops = conv_flops(network, tuple(batch.shape))
        times = {"float32": [], "bfloat16": [], "matmul float32": [], "matmul bfloat16": []}
        for round_ in range(repeats + 1):  # interleaved with the matmul rate: a changing load hits both
            times["matmul float32"].append(max(matmul_gflops("float32", repeats=1), gemm_conv_gflops("float32", 1)))
            for label in ("float32", "bfloat16"):
                start = time.perf_counter()
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=label == "bfloat16"):
                    network(batch)
                times[label].append(time.perf_counter() - start)
            if bf16_rate:
                times["matmul bfloat16"].append(max(matmul_gflops("bfloat16", repeats=1), gemm_conv_gflops("bfloat16", 1)))
        fp32_here = statistics.median(times["matmul float32"][1:])
        bf16_here = statistics.median(times["matmul bfloat16"][1:]) if bf16_rate else None
        for label in ("float32", "bfloat16"):
            median = statistics.median(times[label][1:])
            rate = flops / median / 1e9
            vs_bf16 = f", {rate / bf16_here:.0%} of bf16 matmul" if label == "bfloat16" and bf16_here else ""
            print(f"  {name:16s} {label:9s} {median:6.2f} s  {tile * tile / 1e6 / median:6.2f} MPix/s  "
                  f"{flops / 1e9:6.1f} GFLOP  {rate:6.1f} GFLOP/s = {rate / fp32_here:5.1%} of fp32 matmul "
                  f"({fp32_here:.1f} GFLOP/s in the same rounds){vs_bf16}", flush=True)
        plane = big if spec.in_channels == 1 else np.repeat(big[..., None], 3, -1)
        times = {None: [], 512: []}
        for _ in range(repeats):
            for tile_size in times:
                start = time.perf_counter()
                api.segment_semantic(plane, name, device="cpu", tile=tile_size)
                times[tile_size].append(time.perf_counter() - start)
        for tile_size, values in times.items():
            median = statistics.median(values)
            label = "default tile" if tile_size is None else f"{tile_size} px tiles"
            print(f"  {name:16s} end to end 2048 x 2048, {label}, default precision: {median:6.2f} s  "
                  f"{2048 * 2048 / 1e6 / median:6.2f} MPix/s", flush=True)


def peak_of(model: str) -> dict:
    """Run ``model`` end to end on the 2048 x 2048 image in this (fresh) process; time and peak RSS."""
    import numpy as np

    from napari_unet_maskrcnn import api

    image = synthetic_nuclei(2048, seed=1)
    spec = api.get_model_spec(model)
    if spec.in_channels == 3:
        image = np.repeat(image[..., None], 3, -1)
    run = api.segment_instances if spec.task == "instances" else api.segment_semantic
    start = time.perf_counter()
    run(image, model, device="cpu")
    return {"model": model, "seconds": time.perf_counter() - start, "peak_gb": own_peak_rss_gb()}


def own_peak_rss_gb() -> float:
    """Peak resident memory (GB) of this process's own address space: ``VmHWM`` of /proc/self/status.

    Not ``ru_maxrss``: Linux keeps that across fork and exec, so a child started from a
    process that held the stock model reported the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--skip-peak", action="store_true")
    parser.add_argument("--skip-unets", action="store_true")
    parser.add_argument("--skip-maskrcnn", action="store_true")
    parser.add_argument("--peak", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        print(json.dumps(peak_of(args.peak)))
        return 0
    from napari_unet_maskrcnn.core.device import configure_threads, cpu_has_native_bf16

    configure_threads()
    print(cpu_description())
    fp32_rate = matmul_gflops("float32")
    bf16_rate = matmul_gflops("bfloat16") if cpu_has_native_bf16() else None
    print(f"matmul {MATMUL_SIDE}^2 (torch.mm), median of 5: float32 {fp32_rate:.1f} GFLOP/s"
          + (f", bfloat16 {bf16_rate:.1f} GFLOP/s" if bf16_rate else ", no native bfloat16")
          + f"; oneDNN 1x1-convolution matmul float32 {gemm_conv_gflops('float32'):.1f} GFLOP/s", flush=True)
    if not args.skip_maskrcnn:
        maskrcnn_against_stock(args.sizes, args.repeats)
    if not args.skip_unets:
        unets(args.repeats, fp32_rate, bf16_rate)
    print(f"this process's peak resident memory: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB (includes the stock model)")
    if not args.skip_peak:
        print("peak resident memory of a fresh process, 2048 x 2048 end to end with the defaults:")
        for model in ("maskrcnn-nuclei", *UNETS):
            done = subprocess.run([sys.executable, __file__, "--peak", model], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"  {model:16s} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {model:16s} {row['seconds']:7.2f} s  peak {row['peak_gb']:.2f} GB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
