"""Record a held-out evaluation with test-time flips of a bundled model, for its model card.

    python scripts/evaluate_bundled.py --models NAME --tta > tta.json
    python scripts/record_tta_evaluation.py tta.json --cpu "AMD EPYC (AVX2)" [--plain plain.json]
        [--seconds PLAIN TTA --note "how they were timed"]

The figures go to docs/evaluations/test_time_flips.json under the model's name, with the
SHA-256 of the bundled file they were measured on: scripts/model_cards.py shows them only while
that file is the bundled one (a replaced model needs its own measurement).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from pathlib import Path

from napari_unet_maskrcnn.core.registry import BUNDLED_DIR

REPO = Path(__file__).resolve().parent.parent
RECORD = REPO / "docs" / "evaluations" / "test_time_flips.json"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_records() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluation", type=Path, help="evaluate_bundled.py --tta output (JSON list)")
    parser.add_argument("--seconds", nargs=2, type=float, metavar=("PLAIN", "TTA"),
                        help="evaluation wall time without and with flips, measured on the same machine")
    parser.add_argument("--cpu", required=True, help="CPU model and flags the times were measured on")
    parser.add_argument("--note", default="", help="how the times were measured (e.g. beside a training run)")
    parser.add_argument("--plain", type=Path, help="evaluate_bundled.py output without flips on the same images "
                                                   "(needed when the flips were evaluated on a --limit subset)")
    args = parser.parse_args()
    records = load_records()
    plain = {f["model"]: f for f in json.loads(args.plain.read_text())} if args.plain else {}
    for figures in json.loads(args.evaluation.read_text()):
        name = figures["model"]
        if figures.get("tta") != "flips":
            print(f"error: {args.evaluation} holds no test-time-flips evaluation of {name}.", file=sys.stderr)
            return 2
        entry = {"date": datetime.date.today().isoformat(),
                 "file_sha256": file_sha256(BUNDLED_DIR / f"{name}.safetensors"),
                 "cpu": args.cpu, "evaluation": figures}
        if name in plain:
            if plain[name].get("subset") != figures.get("subset") or plain[name].get("tta"):
                print(f"error: {args.plain} is not a plain evaluation of the same images.", file=sys.stderr)
                return 2
            entry["plain"] = plain[name]
        elif figures.get("subset"):
            print("error: a subset evaluation needs --plain, the same subset without flips.", file=sys.stderr)
            return 2
        if args.seconds:
            entry["seconds"] = {"plain": args.seconds[0], "tta": args.seconds[1], "note": args.note}
        records[name] = entry
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
