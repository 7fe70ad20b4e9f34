"""Install a trained model file as a bundled model, adding its name and held-out figures.

    python scripts/install_bundled_model.py TRAINED.safetensors NAME [--evaluation EVAL.json]
        [--defaults score_threshold=0.8 ...] [--inference-change "what, why, measured"]

Copies the weights unchanged into src/napari_unet_maskrcnn/bundled_models/NAME.safetensors
and completes the spec inside: ``name``, ``provenance.description`` (from the registry) and,
with --evaluation (the JSON of scripts/evaluate_bundled.py), ``provenance.evaluation``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from napari_unet_maskrcnn.core.io import atomic_path
from napari_unet_maskrcnn.core.model_file import SPEC_KEY, read_spec
from napari_unet_maskrcnn.core.registry import BUNDLED, BUNDLED_DIR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", type=Path)
    parser.add_argument("name", choices=list(BUNDLED))
    parser.add_argument("--evaluation", type=Path, help="JSON written by scripts/evaluate_bundled.py")
    parser.add_argument("--defaults", nargs="+", default=[], metavar="KEY=VALUE",
                        help="inference defaults stored in the model, e.g. score_threshold=0.8")
    parser.add_argument("--inference-change", metavar="TEXT",
                        help="record a change of inference settings (what, why, measured) in the provenance")
    args = parser.parse_args()

    spec = read_spec(args.trained)
    entry = BUNDLED[args.name]
    if spec.task != entry.task or tuple(spec.class_names) != entry.class_names:
        raise SystemExit(f"{args.trained} is a {spec.task} model of {spec.class_names}, "
                         f"but {args.name} is {entry.task} of {list(entry.class_names)}.")
    spec.name = args.name
    for item in args.defaults:
        key, _, value = item.partition("=")
        spec.defaults[key] = json.loads(value)
    spec.provenance["description"] = entry.description
    if args.inference_change:
        from datetime import date

        spec.provenance.setdefault("inference_changes", []).append(
            {"date": date.today().isoformat(), "change": args.inference_change})
    if args.evaluation:
        figures = [row for row in json.loads(args.evaluation.read_text()) if row["model"] == args.name]
        if figures:
            spec.provenance["evaluation"] = {k: v for k, v in figures[0].items() if k not in ("model", "file")}
    target = BUNDLED_DIR / f"{args.name}.safetensors"
    with atomic_path(target) as tmp:
        save_file(load_file(str(args.trained)), str(tmp), metadata={SPEC_KEY: spec.to_json()})
        tmp.chmod(0o644)
    print(f"installed {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
