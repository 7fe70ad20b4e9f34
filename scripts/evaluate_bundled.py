"""Evaluate the bundled models on their held-out validation lists with the project's commands.

    python scripts/evaluate_bundled.py [--models NAME ...] [--model-dir DIR] [--work DIR]

For each model: the validation images of ``recipes/<dataset>_val.txt`` (never trained on) are
segmented with ``unet-maskrcnn segment`` and scored with ``unet-maskrcnn evaluate`` against
their instance labels (AP at IoU 0.5..0.9, StarDist's matching_dataset). U-Net models are
also scored as classes (per-class IoU/Dice against background/object/boundary targets made
from the instance labels exactly as in training, plus the foreground IoU = object or
boundary), and as instances split from the classes (``--split-instances``). The tissue
U-Net is scored as classes (background / gland) against EBHI-Seg's gland masks, pooled over
the held-out cases and per diagnosis. DSB2018 figures are also given per imaging modality
(:func:`modality`). Needs ../shared/data. Prints one JSON document with every figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
MODELS = {
    "maskrcnn-nuclei": ("dsb2018_train", "dsb2018_val.txt", ".png"),
    "unet-nuclei": ("dsb2018_train", "dsb2018_val.txt", ".png"),
    "maskrcnn-phasecells": ("usiigaci_cells", "usiigaci_val.txt", ".tif"),
    "unet-phasecells": ("usiigaci_cells", "usiigaci_val.txt", ".tif"),
    "unet-tissue": ("ebhi_seg", "ebhi_val.txt", ".jpg"),
}
# The stated modality rule lives with the training code (group-balanced sampling uses it too).
from napari_unet_maskrcnn.core.training.groups import MODALITIES, modality  # noqa: E402,F401


def cli(*words: str) -> str:
    done = subprocess.run([sys.executable, "-m", "napari_unet_maskrcnn.cli", *words],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"unet-maskrcnn {' '.join(words[:2])} failed:\n{done.stderr}")
    return done.stdout


def validation_set(dataset: str, val_list: str, suffix: str, work: Path,
                   limit: int | None = None) -> tuple[list[Path], Path]:
    """Validation image paths (the first ``limit`` of the list) and a folder of their instance labels (links)."""
    stems = (REPO / "recipes" / val_list).read_text().split()[:limit]
    images = [DATA / dataset / "images" / f"{stem}{suffix}" for stem in stems]
    labels = work / f"{dataset}_val_labels"
    labels.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        (source,) = (DATA / dataset / "labels").glob(f"{stem}.*")
        link = labels / source.name
        if not link.exists():
            link.symlink_to(source)
    return images, labels


def modality_groups(images: list[Path], labels_dir: Path, work: Path) -> dict[str, Path]:
    """Per-modality folders of links to the label files of ``images`` (see :func:`modality`)."""
    from napari_unet_maskrcnn.core.io import read_image

    folders = {}
    for image in images:
        kind = modality(np.asarray(read_image(image).data))
        folder = folders.setdefault(kind, work / f"{labels_dir.name}_{kind}")
        folder.mkdir(parents=True, exist_ok=True)
        (source,) = labels_dir.glob(f"{image.stem}.*")
        link = folder / source.name
        if not link.exists():
            link.symlink_to(source.resolve())
    return folders


def instance_figures(labels_dir: Path, pred_dir: Path) -> dict:
    """AP at IoU 0.5..0.9 and precision / recall / F1 / PQ at 0.5 from ``unet-maskrcnn evaluate``."""
    stats = json.loads(cli("evaluate", "--gt", str(labels_dir), "--pred", str(pred_dir), "--json"))
    figures = {f"ap{round(row['thresh'] * 100)}": row["accuracy"] for row in stats["thresholds"]}
    figures["ap_mean"] = float(np.mean([row["accuracy"] for row in stats["thresholds"]]))
    first = stats["thresholds"][0]
    figures.update(precision50=first["precision"], recall50=first["recall"], f1_50=first["f1"],
                   pq50=first["panoptic_quality"], images=len(list(labels_dir.iterdir())))
    return figures


def tissue_figures(labels_dir: Path, pred_dir: Path) -> dict:
    """Background / gland IoU and Dice pooled over the images, overall and per diagnosis.

    Truth: EBHI-Seg's masks (> 0 = gland epithelium); prediction: class 1 = gland.
    Also the mean over images of the gland Dice (images without gland in truth and
    prediction count as 1).
    """
    import csv

    import tifffile

    from napari_unet_maskrcnn.core.io import read_image
    from napari_unet_maskrcnn.core.metrics import semantic_scores

    diagnosis = {row["stem"]: row["diagnosis"] for row in csv.DictReader(open(DATA / "ebhi_seg" / "index.csv"))}
    groups: dict[str, tuple[list, list]] = {}
    per_image_dice = []
    for path in sorted(labels_dir.iterdir()):
        truth = (np.asarray(read_image(path).data) > 0).ravel()
        pred = (tifffile.imread(pred_dir / f"{path.stem}.tif") == 1).ravel()
        for key in ("all", diagnosis[path.stem]):
            groups.setdefault(key, ([], []))[0].append(truth)
            groups[key][1].append(pred)
        total = truth.sum() + pred.sum()
        per_image_dice.append(1.0 if total == 0 else 2.0 * np.logical_and(truth, pred).sum() / total)
    figures = {}
    for key, (truths, preds) in groups.items():
        scores = semantic_scores(np.concatenate(truths), np.concatenate(preds), 2)
        figures[key] = {"images": len(truths), "iou_background": float(scores["iou"][0]),
                        "iou_gland": float(scores["iou"][1]), "mean_iou": float(np.mean(scores["iou"])),
                        "dice_gland": float(scores["dice"][1])}
    figures["all"]["mean_image_dice_gland"] = float(np.mean(per_image_dice))
    return figures


def semantic_figures(labels_dir: Path, pred_dir: Path) -> dict:
    """Per-class IoU/Dice of predicted classes against classes made from instance labels."""
    import tifffile

    from napari_unet_maskrcnn.core.metrics import semantic_scores
    from napari_unet_maskrcnn.core.training.data import instances_to_classes

    truths, preds = [], []
    for path in sorted(labels_dir.glob("*.tif")):
        truths.append(instances_to_classes(tifffile.imread(path)).ravel())
        preds.append(tifffile.imread(pred_dir / path.name).ravel())
    truth, pred = np.concatenate(truths), np.concatenate(preds)
    scores = semantic_scores(truth, pred, 3)
    foreground = semantic_scores(truth > 0, pred > 0, 2)
    return {
        "class_iou": scores["iou"].tolist(), "class_dice": scores["dice"].tolist(),
        "object_class_iou": float(scores["iou"][1]), "foreground_iou": float(foreground["iou"][1]),
    }


def evaluate(name: str, model: Path, work: Path, tta: bool = False, diameter: float | None = None,
             limit: int | None = None, reuse: bool = False, precision: str | None = None,
             tile: int | None = None) -> dict:
    dataset, val_list, suffix = MODELS[name]
    images, labels = validation_set(dataset, val_list, suffix, work, limit)
    figures: dict = {"model": name, "file": str(model), "validation_images": len(images)}
    if limit is not None:
        figures["subset"] = f"first {len(images)} images of recipes/{val_list}"
    extra = ["--tta"] if tta else []
    if extra:
        figures["tta"] = "flips"
    if diameter is not None:
        extra += ["--diameter", str(diameter)]
        figures["diameter"] = diameter
    if precision is not None:
        extra += ["--precision", precision]
        figures["precision"] = precision
    if tile is not None:
        extra += ["--tile", str(tile)]
        figures["tile"] = tile
    if name == "unet-tissue":
        classes_dir = work / name / "classes"
        cli("segment", *map(str, images), "--model", str(model), "--output", str(classes_dir), "--quiet", *extra)
        figures["tissue"] = tissue_figures(labels, classes_dir)
        return figures
    groups = modality_groups(images, labels, work) if dataset == "dsb2018_train" else {}
    instances_dir = work / name / "instances"
    split = ["--split-instances"] if name.startswith("unet") else []
    if not (reuse and all((instances_dir / f"{image.stem}.tif").is_file() for image in images)):
        cli("segment", *map(str, images), "--model", str(model), "--output", str(instances_dir),
            "--quiet", *split, *extra)
    figures["instances"] = instance_figures(labels, instances_dir)
    for kind, folder in groups.items():
        figures.setdefault("instances_by_modality", {})[kind] = instance_figures(folder, instances_dir)
    if name.startswith("unet"):
        classes_dir = work / name / "classes"
        cli("segment", *map(str, images), "--model", str(model), "--output", str(classes_dir), "--quiet", *extra)
        figures["classes"] = semantic_figures(labels, classes_dir)
        for kind, folder in groups.items():
            figures.setdefault("classes_by_modality", {})[kind] = semantic_figures(folder, classes_dir)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--model-dir", type=Path, help="model files <name>.safetensors (default: bundled)")
    parser.add_argument("--work", type=Path, default=REPO / ".train" / "evaluation")
    parser.add_argument("--limit", type=int, help="the first N images of each held-out list only")
    parser.add_argument("--reuse-predictions", action="store_true",
                        help="instance models: score the predictions already in --work when every image has one "
                             "(e.g. of an interrupted run with the same options)")
    parser.add_argument("--tta", action="store_true", help="segment with test-time flips (--tta)")
    parser.add_argument("--diameter", type=float, help="segment with this --diameter (0 = native scale; default: automatic)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                        help="segment with this --precision (default: the CLI's, auto)")
    parser.add_argument("--tile", type=int, help="segment with this --tile (default: the CLI's, sized to memory)")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs the data sets in {DATA}", file=sys.stderr)
        return 2
    results = []
    for name in args.models:
        model = args.model_dir / f"{name}.safetensors" if args.model_dir else name
        results.append(evaluate(name, model, args.work, args.tta, args.diameter, args.limit,
                                args.reuse_predictions, args.precision, args.tile))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
