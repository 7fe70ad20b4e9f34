"""Write the object-size table of docs/OBJECT_SIZE.md from scripts/evaluate_scales.py's JSON output.

    python scripts/evaluate_scales.py --model M --scales 1 0.25 0.5 2 4 --json > DIR/M.json
    python scripts/evaluate_scales.py --model M --diameter off --scales 1 --json > DIR/M-off.json
    python scripts/scale_table.py DIR [--note "CPU, date, commit"]

One row per model found in DIR: AP(0.5) at native size with the diameter off (the reference),
then automatic at every scale with its difference to the reference, and the largest ratio of
found to true objects on any image. The table replaces the text between
``<!-- evaluate-scales -->`` and ``<!-- /evaluate-scales -->`` in docs/OBJECT_SIZE.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "OBJECT_SIZE.md"
MODELS = ("maskrcnn-nuclei", "unet-nuclei", "maskrcnn-phasecells", "unet-phasecells")
START, END = "<!-- evaluate-scales -->", "<!-- /evaluate-scales -->"


def table(folder: Path, note: str) -> str:
    """The markdown table (and its notes) of the JSON files in ``folder``."""
    rows, scales = [], None
    for model in MODELS:
        auto_file, off_file = folder / f"{model}.json", folder / f"{model}-off.json"
        if not auto_file.exists():
            continue
        auto = json.loads(auto_file.read_text())
        by_scale = {row["scale"]: row for row in auto["scales"]}
        scales = scales or sorted(by_scale)
        reference = json.loads(off_file.read_text())["scales"][0] if off_file.exists() else None
        ref_ap = reference["ap50"] if reference else None
        cells = [f"`{model}` ({by_scale[scales[0]]['images']} images of `{auto['list']}`)",
                 f"{ref_ap:.3f}" if ref_ap is not None else "—"]
        for scale in scales:
            row = by_scale.get(scale)
            if row is None:
                cells.append("—")
                continue
            delta = f" ({row['ap50'] - ref_ap:+.3f})" if ref_ap is not None else ""
            cells.append(f"{row['ap50']:.3f}{delta}, {row['images_rescaled']} resized, "
                         f"≤ {row['max_count_ratio']:.2f}× count")
        rows.append("| " + " | ".join(cells) + " |")
    header = ("| model, held-out list | native, diameter off | "
              + " | ".join(f"×{s:g}, automatic" for s in scales) + " |")
    lines = [header, "|" + "---|" * (2 + len(scales)), *rows, "",
             "Each cell: AP(0.5) (difference to native with the diameter off), images resized by the automatic "
             "size, the largest ratio of found to true objects on any image. U-Nets: watershed instances "
             "split from their classes. " + note]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of evaluate_scales.py JSON files (MODEL.json, MODEL-off.json)")
    parser.add_argument("--note", default="", help="where and when it was measured (CPU, date, commit)")
    args = parser.parse_args()
    text = DOC.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    DOC.write_text(text[:start] + "\n" + table(args.folder, args.note) + "\n" + text[end:])
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
