"""Score a three-class tissue U-Net (background / benign gland / neoplastic epithelium) on EBHI-Seg.

    python scripts/evaluate_tissue_diagnosis.py MODEL.safetensors [--val-list recipes/ebhi_val.txt]

The truth of each held-out image (split by case) is its gland mask with the class its
diagnosis implies: Normal and Polyp -> benign gland; Low-grade IN, High-grade IN,
Adenocarcinoma and Serrated adenoma -> neoplastic epithelium. Prints one JSON document:
per-class IoU / Dice pooled over the images, the same with the two gland classes merged
(comparable with the two-class model), and how often the majority class of the pixels
predicted as gland in an image matches its diagnosis (overall and per diagnosis).
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "ebhi_seg"
BENIGN = {"Normal", "Polyp"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--val-list", type=Path, default=REPO / "recipes" / "ebhi_val.txt")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs the data set in {DATA}", file=sys.stderr)
        return 2
    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.core.io import read_image
    from napari_unet_maskrcnn.core.metrics import semantic_scores

    diagnosis = {row["stem"]: row["diagnosis"] for row in csv.DictReader(open(DATA / "index.csv"))}
    truths, preds = [], []
    matches: dict[str, list[bool]] = {}
    for stem in args.val_list.read_text().split():
        image = np.asarray(read_image(DATA / "images" / f"{stem}.jpg").data)
        gland = np.asarray(read_image(DATA / "labels" / f"{stem}.png").data) > 0
        expected = 1 if diagnosis[stem] in BENIGN else 2
        truth = np.where(gland, expected, 0)
        pred = api.segment_semantic(image, str(args.model), axes="YXC").classes
        truths.append(truth.ravel())
        preds.append(pred.ravel())
        counts = np.bincount(pred.ravel(), minlength=3)[1:]
        if counts.sum():
            matches.setdefault(diagnosis[stem], []).append(int(np.argmax(counts)) + 1 == expected)
    truth, pred = np.concatenate(truths), np.concatenate(preds)
    three = semantic_scores(truth, pred, 3)
    two = semantic_scores(truth > 0, pred > 0, 2)
    every = [m for group in matches.values() for m in group]
    report = {
        "model": str(args.model),
        "images": len(truths),
        "iou": dict(zip(("background", "benign_gland", "neoplastic_epithelium"), three["iou"].round(4).tolist())),
        "dice": dict(zip(("background", "benign_gland", "neoplastic_epithelium"), three["dice"].round(4).tolist())),
        "mean_iou_3": float(np.nanmean(three["iou"])),
        "merged_glands": {"mean_iou": float(np.mean(two["iou"])), "dice_gland": float(two["dice"][1])},
        "image_majority_matches_diagnosis": float(np.mean(every)) if every else None,
        "by_diagnosis": {key: {"images": len(group), "majority_matches": float(np.mean(group))}
                         for key, group in sorted(matches.items())},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
