"""Evaluate a model on its held-out images at native size and resized (object size, issues 7 and 18).

    python scripts/evaluate_scales.py --model unet-nuclei [--limit 20] [--scales 1 0.5 2]
        [--diameter auto|off|PIXELS] [--model-file FILE] [--json]

The held-out list and data are evaluate_bundled.py's (``recipes/<dataset>_val.txt``, never
trained on). Each image is resized with anti-aliased linear interpolation
(``skimage.transform.rescale``) and its instance labels by nearest neighbour to the same
shape; the model segments it through the Python API with the given ``diameter`` (default
automatic) — Mask R-CNN models as instances, U-Net models as instances split from their
classes (seeded watershed, ``split_instances``) — and AP(0.5) is computed with StarDist's
matching, counts summed over the images (``core.metrics.matching_dataset``, as
``unet-maskrcnn evaluate``). Prints one line per scale (AP(0.5), mean AP over IoU 0.5..0.9,
precision, recall, median estimated diameter, median |log2(estimate / true median diameter)|,
the largest ratio of found to true objects on any image and the images above 1.5x (named in the JSON), images
rescaled, images whose automatic size left a note, seconds) and, with
``--json``, the figures as JSON on stdout. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_bundled import DATA, MODELS, REPO  # noqa: E402  (the held-out lists and data layout)


def resized(image: np.ndarray, axes: str, labels: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (anti-aliased linear, its dtype kept) and ``labels`` (nearest) resized by ``scale``."""
    from skimage.transform import rescale

    if scale == 1.0:
        return image, labels
    channel_axis = axes.index("C") if "C" in axes else None
    out = rescale(image.astype(np.float32), scale, order=1, anti_aliasing=scale < 1, preserve_range=True,
                  channel_axis=channel_axis)
    if image.dtype.kind in "ui":
        out = np.clip(np.round(out), np.iinfo(image.dtype).min, np.iinfo(image.dtype).max)
    out_labels = rescale(labels, scale, order=0, anti_aliasing=False, preserve_range=True).astype(labels.dtype)
    return out.astype(image.dtype), out_labels


def evaluate_scale(model: str, task: str, items: list[tuple[str, np.ndarray, str, np.ndarray]], scale: float,
                   diameter: float | None) -> dict:
    """Figures of ``model`` on ``items`` (name, image, axes, labels) resized by ``scale``; ``over_1.5x`` names
    the images where more than 1.5x the true count was found."""
    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.core.metrics import matching_dataset

    from napari_unet_maskrcnn.core.object_size import median_diameter

    pairs, estimates, rescaled, count_ratios, estimate_errors, notes = [], [], 0, [], [], 0
    start = time.perf_counter()
    over: dict[str, str] = {}
    for stem, image, axes, labels in items:
        image, labels = resized(image, axes, labels, scale)
        if task == "instances":
            result = api.segment_instances(image, model, axes=axes, diameter=diameter)
            predicted = result.labels
        else:
            result = api.segment_semantic(image, model, axes=axes, diameter=diameter, split_instances=True)
            predicted = result.instances
        pairs.append((labels, predicted))
        found, true = len(np.unique(predicted[predicted > 0])), len(np.unique(labels[labels > 0]))
        count_ratios.append(found / max(true, 1))
        if count_ratios[-1] > 1.5:
            over[stem] = f"{found} found / {true} true"
        if result.diameter is not None:
            estimates.append(result.diameter)
            truth = median_diameter(labels)
            if truth:
                estimate_errors.append(abs(np.log2(result.diameter / truth)))
        rescaled += result.scale != 1.0
        notes += bool(result.object_size.get("note"))
    seconds = time.perf_counter() - start
    stats = matching_dataset(pairs)
    return {
        "scale": scale, "images": len(items), "ap50": stats[0]["accuracy"],
        "ap_mean": float(np.mean([row["accuracy"] for row in stats])),
        "precision50": stats[0]["precision"], "recall50": stats[0]["recall"],
        "median_estimated_diameter": float(np.median(estimates)) if estimates else None,
        "median_abs_log2_estimate_error": float(np.median(estimate_errors)) if estimate_errors else None,
        "max_count_ratio": float(max(count_ratios)), "images_over_1.5x_count": int(sum(r > 1.5 for r in count_ratios)),
        "over_1.5x": over,
        "images_rescaled": int(rescaled), "images_with_note": int(notes), "seconds": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    instance_lists = [name for name in MODELS if not name.endswith("tissue")]  # tissue: class masks only
    parser.add_argument("--model", required=True, choices=instance_lists, help="which held-out list to use")
    parser.add_argument("--model-file", type=Path, help="model file to evaluate (default: the bundled model)")
    parser.add_argument("--limit", type=int, help="first N images of the list only")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 2.0])
    parser.add_argument("--diameter", default="auto", help="auto (default), off, or pixels")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON on stdout")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs the data sets in {DATA}", file=sys.stderr)
        return 2
    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.core.io import read_image

    diameter = {"auto": None, "off": 0.0}.get(args.diameter)
    if diameter is None and args.diameter != "auto":
        diameter = float(args.diameter)
    model = str(args.model_file or args.model)
    spec = api.get_model_spec(model)
    dataset, val_list, suffix = MODELS[args.model][:3]
    stems = (REPO / "recipes" / val_list).read_text().split()[: args.limit]
    items = []
    for stem in stems:
        image = read_image(DATA / dataset / "images" / f"{stem}{suffix}")
        labels = read_image(DATA / dataset / "labels" / f"{stem}.tif").data
        items.append((stem, image.data, image.axes, labels))
    print(f"{model}: {len(items)} held-out images of {val_list}, diameter {args.diameter}, model trained on "
          f"{spec.object_diameter_px} px objects", file=sys.stderr)
    figures = []
    for scale in args.scales:
        figures.append(evaluate_scale(model, spec.task, items, scale, diameter))
        row = figures[-1]
        print(f"x{scale:g}: AP(0.5) {row['ap50']:.3f}  mean AP {row['ap_mean']:.3f}  precision {row['precision50']:.3f}"
              f"  recall {row['recall50']:.3f}  median estimate {row['median_estimated_diameter']}"
              f"  |log2 err| {row['median_abs_log2_estimate_error']}  max count ratio {row['max_count_ratio']:.2f}"
              f" ({row['images_over_1.5x_count']} over 1.5x)  notes {row['images_with_note']}"
              f"  rescaled {row['images_rescaled']}/{row['images']}  {row['seconds']} s", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"model": model, "list": val_list, "diameter": args.diameter, "scales": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
