"""AP(0.5) of a Mask R-CNN model on its held-out list as a function of the score threshold.

    python scripts/tune_score_threshold.py MODEL {dsb2018,usiigaci} [--thresholds 0.3 0.4 ...]

The images are segmented once at the lowest threshold; each higher threshold then removes
the objects scoring below it (the same result as not detecting them: detections are
pasted highest score first and NMS keeps the highest-scoring box). Prints AP(0.5) per
threshold (StarDist's matching_dataset) and the best one, as JSON. The chosen value is
what scripts/install_bundled_model.py --defaults stores in a bundled model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SETS = {"dsb2018": ("dsb2018_train", "dsb2018_val.txt", ".png"),
        "usiigaci": ("usiigaci_cells", "usiigaci_val.txt", ".tif")}


def main() -> int:
    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.core.io import read_image
    from napari_unet_maskrcnn.core.metrics import matching_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("dataset", choices=list(SETS))
    parser.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    args = parser.parse_args()
    folder, val_list, suffix = SETS[args.dataset]
    stems = (REPO / "recipes" / val_list).read_text().split()
    thresholds = sorted(args.thresholds)
    results = []
    for stem in stems:
        image = read_image(DATA / folder / "images" / f"{stem}{suffix}")
        truth = read_image(DATA / folder / "labels" / f"{stem}.tif").data
        found = api.segment_instances(image.data, args.model, axes=image.axes, score_threshold=thresholds[0],
                                       precision=args.precision)
        results.append((truth, found))
    table = {}
    for threshold in thresholds:
        pairs = []
        for truth, found in results:
            lut = np.zeros(int(found.labels.max()) + 1, np.uint32)
            keep = found.table["score"] >= threshold
            lut[found.table["label"][keep]] = found.table["label"][keep]
            pairs.append((truth, lut[found.labels]))
        table[threshold] = matching_dataset(pairs, thresholds=(0.5,))[0]["accuracy"]
    best = max(table, key=table.get)
    print(json.dumps({"ap50_by_score_threshold": table, "best": best}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
