"""Evaluate the bundled models on their held-out validation lists with the project's commands.

    python scripts/evaluate_bundled.py [--models NAME ...] [--model-dir DIR] [--work DIR]

For each model: the validation images of ``recipes/<dataset>_val.txt`` (never trained on) are
segmented with ``unet-maskrcnn segment`` and scored with ``unet-maskrcnn evaluate`` against
their instance labels (AP at IoU 0.5..0.9, StarDist's matching_dataset). U-Net models are
also scored as classes (per-class IoU/Dice against background/object/boundary targets made
from the instance labels exactly as in training, plus the foreground IoU = object or
boundary), and as instances split from the classes (``--split-instances``). Needs
../shared/data. Prints one JSON document with every figure.
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
}


def cli(*words: str) -> str:
    done = subprocess.run([sys.executable, "-m", "napari_unet_maskrcnn.cli", *words],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"unet-maskrcnn {' '.join(words[:2])} failed:\n{done.stderr}")
    return done.stdout


def validation_set(dataset: str, val_list: str, suffix: str, work: Path) -> tuple[list[Path], Path]:
    """Validation image paths and a folder of their instance labels (links), by stem."""
    stems = (REPO / "recipes" / val_list).read_text().split()
    images = [DATA / dataset / "images" / f"{stem}{suffix}" for stem in stems]
    labels = work / f"{dataset}_val_labels"
    labels.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        link = labels / f"{stem}.tif"
        if not link.exists():
            link.symlink_to(DATA / dataset / "labels" / f"{stem}.tif")
    return images, labels


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


def evaluate(name: str, model: Path, work: Path) -> dict:
    dataset, val_list, suffix = MODELS[name]
    images, labels = validation_set(dataset, val_list, suffix, work)
    figures: dict = {"model": name, "file": str(model), "validation_images": len(images)}
    instances_dir = work / name / "instances"
    split = ["--split-instances"] if name.startswith("unet") else []
    cli("segment", *map(str, images), "--model", str(model), "--output", str(instances_dir),
        "--quiet", *split)
    stats = json.loads(cli("evaluate", "--gt", str(labels), "--pred", str(instances_dir), "--json"))
    figures["instances"] = {f"ap{round(row['thresh'] * 100)}": row["accuracy"] for row in stats["thresholds"]}
    figures["instances"]["ap_mean"] = float(np.mean([row["accuracy"] for row in stats["thresholds"]]))
    first = stats["thresholds"][0]
    figures["instances"].update(precision50=first["precision"], recall50=first["recall"], f1_50=first["f1"],
                                pq50=first["panoptic_quality"])
    if name.startswith("unet"):
        classes_dir = work / name / "classes"
        cli("segment", *map(str, images), "--model", str(model), "--output", str(classes_dir), "--quiet")
        figures["classes"] = semantic_figures(labels, classes_dir)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--model-dir", type=Path, help="model files <name>.safetensors (default: bundled)")
    parser.add_argument("--work", type=Path, default=REPO / ".train" / "evaluation")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs the data sets in {DATA}", file=sys.stderr)
        return 2
    results = []
    for name in args.models:
        model = args.model_dir / f"{name}.safetensors" if args.model_dir else name
        results.append(evaluate(name, model, args.work))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
