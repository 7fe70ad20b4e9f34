"""Fine-tune the bundled nuclei Mask R-CNN on a few phase-contrast images; AP(0.5) before and after.

    python scripts/finetune_phasecells.py [--base maskrcnn-nuclei] [--train-sets 4] [--minutes 10]
        [--output finetuned-phasecells.safetensors] [--data ../shared/data/usiigaci_cells]
        [--val-list recipes/usiigaci_val.txt] [--val-sets N] [--seed 0]

What a user does with the "Train model" widget, as a script: start from ``maskrcnn-nuclei``
(fluorescence nuclei, DSB2018), train on the instance labels of the first ``--train-sets``
Usiigaci sets that are not in the validation list, for at most ``--minutes`` of training
(CPU by default), keeping the last weights (no validation split: the held-out sets are never
seen). AP at IoU 0.5 (TP / (TP + FP + FN), counts summed over the images,
``core.metrics.matching_dataset``) on the sets of ``--val-list`` is printed before and after,
as one JSON document on stdout. The images go through the same code as the widget
(``TrainingPair`` in memory, ``train_maskrcnn``, ``api.segment_instances``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "usiigaci_cells"
VAL_LIST = REPO / "recipes" / "usiigaci_val.txt"


def read_set(data: Path, name: str):
    """A ``TrainingPair`` of one Usiigaci set (uint16 phase contrast, uint16 instance labels)."""
    from napari_unet_maskrcnn.core.io import read_image
    from napari_unet_maskrcnn.core.training import TrainingPair

    image = read_image(data / "images" / f"{name}.tif")
    labels = read_image(data / "labels" / f"{name}.tif")
    return TrainingPair(image.data, labels.data, name, image.pixel_size.get("X"))


def ap50(model, pairs, device: str = "auto") -> float:
    """AP at IoU 0.5 of ``model`` (name or file) over ``pairs``, with the model's default thresholds."""
    from napari_unet_maskrcnn import api
    from napari_unet_maskrcnn.core.metrics import matching_dataset

    predicted = [(pair.labels, api.segment_instances(pair.image, model, axes="YX", device=device).labels)
                 for pair in pairs]
    return float(matching_dataset(predicted, thresholds=(0.5,))[0]["accuracy"])


def finetune(*, base: str, train_names: list[str], val_names: list[str], minutes: float, output: Path,
             data: Path = DATA, seed: int = 0, device: str = "auto", log=print) -> dict:
    """Fine-tune ``base`` on ``train_names``, score it before and after on ``val_names``; the figures."""
    from napari_unet_maskrcnn.core.model_file import read_spec
    from napari_unet_maskrcnn.core.registry import resolve_model
    from napari_unet_maskrcnn.core.training import TrainConfig, train_maskrcnn

    overlap = sorted(set(train_names) & set(val_names))
    if overlap:
        raise ValueError(f"Training sets {overlap} are in the validation list.")
    train_pairs = [read_set(data, name) for name in train_names]
    val_pairs = [read_set(data, name) for name in val_names]
    started = time.monotonic()
    before = ap50(base, val_pairs, device)
    log(f"AP50 of '{base}' on {len(val_pairs)} held-out sets: {before:.3f} ({time.monotonic() - started:.0f} s)")

    def report(event) -> None:
        if event.stage == "epoch":
            log(f"epoch {event.epoch}: loss {event.report.losses.get('loss', float('nan')):.4f}, "
                f"{event.elapsed_s:.0f} s")
        elif event.stage == "note":
            log(event.message)

    config = TrainConfig(epochs=None, minutes=minutes, crop=256, val_fraction=0.0, seed=seed, device=device,
                         base=str(base))
    result = train_maskrcnn(
        train_pairs, output=output, config=config, class_name=read_spec(resolve_model(base)).class_names[0],
        provenance={"data": {"dataset": "Usiigaci", "train_sets": train_names},
                    "command_line": " ".join(["python", *sys.argv])},
        on_progress=report,
    )
    after = ap50(output, val_pairs, device)
    log(f"AP50 after fine-tuning: {after:.3f}")
    return {
        "base": str(base), "train_sets": train_names, "val_sets": val_names, "minutes": minutes,
        "ap50_before": before, "ap50_after": after, "output": str(result.path),
        "steps": result.steps, "epochs": len(result.history), "train_s": round(result.elapsed_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from napari_unet_maskrcnn.core.training import read_name_list

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="maskrcnn-nuclei", help="model name or file to start from")
    parser.add_argument("--train-sets", type=int, default=4, help="number of sets to train on (4)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget (10)")
    parser.add_argument("--output", type=Path, default=Path("finetuned-phasecells.safetensors"))
    parser.add_argument("--data", type=Path, default=DATA, help="the usiigaci_cells folder")
    parser.add_argument("--val-list", type=Path, default=VAL_LIST, help="held-out set names")
    parser.add_argument("--val-sets", type=int, help="score on only the first N held-out sets")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir():
        parser.error(f"'{args.data}' has no images/ folder: give the usiigaci_cells folder with --data.")
    val_names = read_name_list(args.val_list)[: args.val_sets]
    candidates = sorted(path.stem for path in (args.data / "images").glob("*.tif"))
    train_names = [name for name in candidates if name not in val_names][: args.train_sets]
    figures = finetune(base=args.base, train_names=train_names, val_names=val_names, minutes=args.minutes,
                       output=args.output, data=args.data, seed=args.seed, device=args.device,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
