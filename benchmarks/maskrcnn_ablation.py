"""End-to-end speed, parameters and file size of Mask R-CNN design variants, side by side in one run.

    python benchmarks/maskrcnn_ablation.py [--size 512] [--repeats 3] [--only NAME ...]

Every variant is ``build_maskrcnn`` with random weights (speed does not depend on what the
weights learned) run exactly as ``segment_instances`` runs a model: tiles, the network,
mask pasting and overlap resolution, on one crowded synthetic 16-bit image. So that every
variant does the same head work, the score threshold is 0 and the number of detections is
set by ``detections_per_image`` (150 on the default 512 x 512 image: the bundled model keeps
about that many above its score threshold on this crowded image). The rounds are interleaved
(variant A, B, ..., then again) so a background load affects all alike; the table gives the
median seconds of ``--repeats`` rounds and the speed relative to the baseline (the bundled
maskrcnn-nuclei design). The last row is torchvision's stock ``maskrcnn_resnet50_fpn`` (random
weights, not resized, the same number of detections, all segmented and pasted) on the same image,
so "speed vs baseline" of that row is the stock model's speed relative to ours;
``benchmarks/speed.py`` relates the bundled model itself to the stock model.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_image_memory import synthetic_nuclei  # noqa: E402
from speed import cpu_description, run_stock, stock_network  # noqa: E402

BASE = {"backbone": "resnet18", "fpn_channels": 128, "box_head_size": 1024, "mask_head_channels": 128,
        "box_batch_size_per_image": 256, "detections_per_image": 150}
VARIANTS = {
    "baseline (bundled design)": {},
    "backbone resnet34": {"backbone": "resnet34"},
    "FPN 64": {"fpn_channels": 64},
    "FPN 256": {"fpn_channels": 256},
    "box head 256": {"box_head_size": 256},
    "box head 512": {"box_head_size": 512},
    "mask head 64": {"mask_head_channels": 64},
    "mask head 256": {"mask_head_channels": 256},
    "mask RoIAlign 7 (14x14 masks)": {"mask_roi_size": 7},
    "mask RoIAlign 28 (56x56 masks)": {"mask_roi_size": 28},
    "proposals 2000/3000 (= baseline: noise check)": {"rpn_post_nms_top_n_test": 2000, "rpn_pre_nms_top_n_test": 3000},
    "proposals 1000": {"rpn_post_nms_top_n_test": 1000, "rpn_pre_nms_top_n_test": 1000},
    "proposals 500": {"rpn_post_nms_top_n_test": 500, "rpn_pre_nms_top_n_test": 500},
    "detections 75": {"detections_per_image": 75},
    "detections 300": {"detections_per_image": 300},
    "GroupNorm FPN+mask, 2-fc box head": {"norm": "group"},
    "GroupNorm, 4conv1fc box head (v2)": {"norm": "group", "box_head_convs": 4},
    "GroupNorm v2 + RPN conv depth 2": {"norm": "group", "box_head_convs": 4, "rpn_conv_depth": 2},
}
STOCK = "torchvision maskrcnn_resnet50_fpn (stock), same detections"


def build(config: dict, folder: Path):
    """(network, parameter count, float16 file size in MB) of one variant."""
    import torch

    from napari_unet_maskrcnn.core.model_file import ModelSpec, build_network, save_model

    torch.manual_seed(0)
    spec = ModelSpec("maskrcnn", {**BASE, **config}, ["nucleus"], 3)
    network = build_network(spec).eval()
    path = save_model(folder / "variant.safetensors", network, spec)
    return network, sum(p.numel() for p in network.parameters()), path.stat().st_size / 1e6


def segment(network, image, tile: int) -> int:
    """Objects found by the project's tiled instance path with ``network``; returns their count."""
    import numpy as np

    from napari_unet_maskrcnn.core.inputs import prepare_plane
    from napari_unet_maskrcnn.core.instances import predict_instances_plane
    from napari_unet_maskrcnn.core.models.maskrcnn import detect
    from napari_unet_maskrcnn.core.progress import drain

    source = prepare_plane(np.stack([image] * 3, axis=-1), 3, None, {"kind": "percentile", "low": 1.0, "high": 99.8})
    detector = functools.partial(detect, network, score_threshold=0.0)
    return len(drain(predict_instances_plane(source, detector, tile=tile, margin=64)).scores)


def print_table(times: dict, found: dict, info: dict, title: str) -> None:
    """Markdown table of the median seconds, speed relative to the first variant, size and objects."""
    median = {name: statistics.median(values) for name, values in times.items()}
    base = next(iter(median.values()))
    print(f"{title}; speed relative to '{next(iter(median))}' (>1 = faster)")
    print("| variant | params (M) | file (MB) | objects | median s | speed vs baseline |")
    print("|---|---|---|---|---|---|")
    for name, seconds in median.items():
        params, megabytes = info[name]
        print(f"| {name} | {params / 1e6:.1f} | {megabytes:.1f} | {found[name]} | {seconds:.2f} | "
              f"{base / seconds:.2f} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="crowded image side (px); one tile up to 1024")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=[*VARIANTS, STOCK], help="a subset of the variants")
    args = parser.parse_args()

    from napari_unet_maskrcnn.core.device import configure_threads

    configure_threads()
    print(cpu_description())
    image = synthetic_nuclei(args.size, seed=1)
    names = [name for name in (args.only or VARIANTS) if name in VARIANTS]
    calls, info = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            network, params, megabytes = build(VARIANTS[name], Path(folder))
            calls[name] = functools.partial(segment, network, image, args.tile)
            info[name] = (params, megabytes)
        if not args.only or STOCK in args.only:
            import torch

            torch.manual_seed(0)
            network = stock_network(args.size, BASE["detections_per_image"]).eval()
            network.roi_heads.score_thresh = 0.0
            calls[STOCK] = functools.partial(run_stock, image, network=network)
            info[STOCK] = (sum(p.numel() for p in network.parameters()), float("nan"))
    times = {name: [] for name in calls}
    found = {}
    for round_ in range(1, args.repeats + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            found[name] = call()
            times[name].append(time.perf_counter() - start)
        print_table(times, found, info, f"{args.size}x{args.size} crowded synthetic nuclei, tile {args.tile}, "
                    f"median of {round_} interleaved round(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
