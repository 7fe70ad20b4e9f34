"""Record in a model file the object diameter of its training data, recomputed from its provenance.

    python scripts/set_model_diameter.py MODEL.safetensors [...] [--dry-run]

For files trained before model files stored ``object_diameter_px``. The training labels are
the instance label images of the file's provenance (``data.labels_dir``) minus its held-out
images (``data.val_names``, which are the ``recipes/*_val.txt`` list); the diameter is the
median equivalent diameter of all their objects, as training computes it
(``core.training.loop.training_diameter``). Only the file's description changes: the tensors
are copied unchanged (as stored) and the file is replaced atomically. The provenance gains
``object_diameter`` (how it was computed, images and objects counted).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def training_label_files(spec) -> list[Path]:
    """The instance label files the model was trained on, from its provenance."""
    data = spec.provenance.get("data", {})
    if data.get("label_kind", "instances") != "instances" or "labels_dir" not in data:
        raise SystemExit(f"{spec.name or spec.arch}: its provenance names no instance labels folder.")
    held_out = set(data.get("val_names", []))
    files = sorted(p for p in Path(data["labels_dir"]).iterdir() if p.stem not in held_out and not p.name.startswith("."))
    if data.get("n_train") is not None and len(files) != data["n_train"]:
        raise SystemExit(f"{len(files)} training label files found, the provenance says {data['n_train']}: "
                         "the data folder differs from the one trained on.")
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="print the diameters, write nothing")
    args = parser.parse_args()
    from safetensors import safe_open
    from safetensors.torch import save_file

    from napari_unet_maskrcnn.core.io import atomic_path, read_image
    from napari_unet_maskrcnn.core.model_file import SPEC_KEY, read_spec
    from napari_unet_maskrcnn.core.object_size import equivalent_diameters

    for path in args.models:
        spec = read_spec(path)
        files = training_label_files(spec)
        diameters = np.concatenate([equivalent_diameters(read_image(f).data) for f in files])
        diameter = round(float(np.median(diameters)), 2)
        print(f"{path}: median equivalent diameter {diameter} px over {diameters.size} objects in "
              f"{len(files)} training label images (was {spec.object_diameter_px})")
        if args.dry_run:
            continue
        spec.object_diameter_px = diameter
        spec.provenance["object_diameter"] = {
            "px": diameter, "method": "median equivalent diameter of the training labels' objects",
            "images": len(files), "objects": int(diameters.size), "set_by": "scripts/set_model_diameter.py",
        }
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata[SPEC_KEY] = spec.to_json()
        json.loads(metadata[SPEC_KEY])
        mode = path.stat().st_mode & 0o777
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
            tmp.chmod(mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
