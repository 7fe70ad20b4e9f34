"""``unet-maskrcnn evaluate``: score predicted label files against ground truth, matched by stem."""

from __future__ import annotations

import json
import sys
from pathlib import Path

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def add_evaluate_parser(commands) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="AP, precision, recall, F1, panoptic quality at IoU 0.5..0.9 (StarDist's matching_dataset)",
    )
    parser.add_argument("--gt", required=True, type=Path, metavar="DIR", help="ground-truth label files")
    parser.add_argument("--pred", required=True, type=Path, metavar="DIR", help="predicted label files")
    parser.add_argument("--semantic", action="store_true",
                        help="class maps instead of instances: per-class IoU and Dice")
    parser.add_argument("--ignore-label", type=int,
                        help="semantic: true class value to leave out (e.g. 0 = unlabelled)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def paired_files(gt_dir: Path, pred_dir: Path) -> list[tuple[Path, Path]]:
    """(truth, prediction) files with the same stem; raises ValueError naming what is missing."""
    for folder, what in ((gt_dir, "--gt"), (pred_dir, "--pred")):
        if not folder.is_dir():
            raise ValueError(f"{what} '{folder}' is not a folder.")
    truths = {p.stem: p for p in sorted(gt_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    preds = {p.stem: p for p in sorted(pred_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    missing = sorted(set(truths) - set(preds))
    if missing:
        raise ValueError(
            f"{len(missing)} ground-truth files have no prediction in '{pred_dir}' "
            f"(e.g. {', '.join(missing[:5])}). Segment them first, or evaluate a folder with matching names."
        )
    if not truths:
        raise ValueError(f"no label images ({', '.join(IMAGE_SUFFIXES)}) in '{gt_dir}'.")
    return [(truths[stem], preds[stem]) for stem in sorted(truths)]


def _read_labels(path: Path):
    from ..core.io import read_image
    from ..core.validation import check_label_values

    data = read_image(path).data
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        raise ValueError(f"'{path}' is a colour image, not a label image.")
    return check_label_values(data, f"'{path}'")


def _load_pairs(pairs):
    for truth_path, pred_path in pairs:
        truth, pred = _read_labels(truth_path), _read_labels(pred_path)
        if truth.shape != pred.shape:
            raise ValueError(f"'{truth_path}' has shape {truth.shape} but '{pred_path}' has {pred.shape}.")
        yield truth, pred


def run_evaluate(args) -> int:
    from .. import api

    try:
        pairs = paired_files(args.gt, args.pred)
        report = api.evaluate_pairs(_load_pairs(pairs), kind="classes" if args.semantic else "instances",
                                    ignore_label=args.ignore_label)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.semantic:
        print(f"{report['images']} images")
        print("class  IoU     Dice    pixels")
        for row in report["classes"]:
            print(f"{row['class']:<6} {row['iou']:.4f}  {row['dice']:.4f}  {row['support']}")
    else:
        _print_instance_table(report)
    return 0


def _print_instance_table(report: dict) -> None:
    columns = ("thresh", "accuracy", "precision", "recall", "f1", "panoptic_quality", "tp", "fp", "fn")
    print(f"{report['images']} images; AP = accuracy = TP / (TP + FP + FN), counts summed over images")
    print("  ".join(f"{c:>9}" for c in ("IoU", "AP", "precision", "recall", "F1", "PQ", "TP", "FP", "FN")))
    stats = report["thresholds"]
    for row in stats:
        print("  ".join(f"{row[c]:9.4f}" if isinstance(row[c], float) else f"{row[c]:9d}" for c in columns))
    mean = {c: sum(row[c] for row in stats) / len(stats) for c in columns[1:6]}
    print("     mean  " + "  ".join(f"{mean[c]:9.4f}" for c in columns[1:6]))
