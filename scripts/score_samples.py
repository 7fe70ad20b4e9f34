"""Score the bundled models on the shipped sample images against the data sets' ground truth.

    python scripts/score_samples.py [--data DATA_DIR] [--tissue-model NAME_OR_FILE] [--device cpu]

Instances (nuclei, cells): AP(0.5) = TP / (TP + FP + FN) at IoU 0.5 (the project's
``evaluate`` definition) for each instance model and for each U-Net's ``split_instances``.
Tissue: per-class IoU and Dice of the U-Net's classes (gland vs everything else) against the
EBHI-Seg masks. The ground truth is cut from ``DATA_DIR`` exactly as make_sample_data.py cuts
the images. Prints one line per (sample, model).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_sample_data as made  # noqa: E402

from napari_unet_maskrcnn import api  # noqa: E402
from napari_unet_maskrcnn.core.metrics import matching_dataset, semantic_scores  # noqa: E402


def truths(data: Path) -> dict[str, np.ndarray]:
    """Ground-truth labels of each sample file, on the sample's pixel grid."""
    dsb = data / "dsb2018_train" / "labels"
    ebhi = [np.asarray(Image.open(data / "ebhi_seg" / "labels" / f"{stem}.png")) for stem in made.EBHI_TILES]
    return {
        "nuclei_fluorescence.tif": tifffile.imread(dsb / f"{made.DSB_FLUORESCENCE}.tif")[made.DSB_FLUORESCENCE_CROP],
        "nuclei_he.tif": tifffile.imread(dsb / f"{made.DSB_HE}.tif"),
        "phase_cells.tif": tifffile.imread(
            data / "usiigaci_cells" / "labels" / f"{made.USIIGACI_SET}.tif")[made.USIIGACI_CROP],
        "tissue_he.tif": np.concatenate([np.concatenate(ebhi[:2], axis=1), np.concatenate(ebhi[2:], axis=1)]),
    }


def score(image: np.ndarray, truth: np.ndarray, model: str, device: str) -> str:
    spec = api.get_model_spec(model)
    if spec.task == "instances":
        predicted = api.segment_instances(image, model, device=device).labels
    elif "boundary" in spec.class_names:
        predicted = api.segment_semantic(image, model, device=device, split_instances=True).instances
    else:
        classes = api.segment_semantic(image, model, device=device).classes
        scores = semantic_scores(truth, (classes > 0).astype(np.int64), 2)
        return (f"IoU background {scores['iou'][0]:.3f}, gland {scores['iou'][1]:.3f}; "
                f"gland Dice {scores['dice'][1]:.3f}")
    (stats,) = matching_dataset([(truth, predicted)], thresholds=(0.5,))
    return (f"AP(0.5) {stats['accuracy']:.3f} (TP {stats['tp']}, FP {stats['fp']}, FN {stats['fn']}; "
            f"{stats['n_true']} true objects)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=made.DEFAULT_DATA)
    parser.add_argument("--samples", type=Path, default=made.DEFAULT_OUTPUT)
    parser.add_argument("--tissue-model", default="unet-tissue")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    models = {
        "nuclei_fluorescence.tif": ["maskrcnn-nuclei", "unet-nuclei"],
        "nuclei_he.tif": ["maskrcnn-nuclei", "unet-nuclei"],
        "phase_cells.tif": ["maskrcnn-phasecells", "unet-phasecells"],
        "tissue_he.tif": [args.tissue_model],
    }
    for name, truth in truths(args.data).items():
        image = tifffile.imread(args.samples / name)
        for model in models[name]:
            start = time.perf_counter()
            result = score(image, truth, model, args.device)
            print(f"{name:24} {model:22} {result}  [{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
