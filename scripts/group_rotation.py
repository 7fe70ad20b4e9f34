"""Validate a bundled model's recipe by holding out whole groups of its data in rotation (issue 18, part 2).

    python scripts/group_rotation.py --model unet-nuclei --minutes 15 [--groups G ...] [--work DIR]
        [--seed 0] [--precision auto] [--max-test 60] > rotation.json

The held-out lists (recipes/*_val.txt) predict images *like the training images*; users' images
come from other labs. Here the images are sorted into groups: DSB2018 (nuclei models) by appearance
(``core.training.groups.appearance_group``: fluorescence on small / large frames, stained,
brightfield), Usiigaci (phase-contrast models) by cell size and crowding
(``core.training.groups.phase_group``: it names no experiments). For each group G, a model is
trained **from scratch** with the bundled model's recipe on the other groups' training images only,
then scored on G's images, which it never saw.
A reference model trained the same way (same minutes, seed, precision) on every group's training
images is scored on the held-out list's images of each group. Reported per group and as the mean
over groups (each group counts once):

- ``unseen``: the fold model on up to ``--max-test`` images of G (held-out list first, then G's
  training images: none of them was seen by the fold model);
- ``unseen_heldout`` and ``reference_heldout``: the fold and reference models on G's images of the
  held-out list: the same images, so their difference is what not having seen G costs.

Needs ../shared/data. Model files and predictions go to ``--work`` (default .train/rotation/MODEL);
a model file already there is reused (a run can be continued), nothing else is replaced. The
training time is ``--minutes`` per model (groups + 1 models), so size it to the session.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_bundled import DATA, REPO, cli, instance_figures, semantic_figures  # noqa: E402

RECIPES = {
    "unet-nuclei": ["--arch", "unet", "--in-channels", "3", "--class-names", "background", "nucleus", "boundary",
                    "--depth", "4", "--base-width", "16", "--crop", "256", "--batch-size", "8"],
    "maskrcnn-nuclei": ["--arch", "maskrcnn", "--in-channels", "3", "--class-names", "nucleus", "--backbone",
                        "resnet18", "--fpn-channels", "128", "--mask-head-channels", "128", "--box-batch-size",
                        "256", "--crop", "256", "--batch-size", "4"],
}
"""The from-scratch recipes of scripts/train_bundled.sh (without the time budget)."""
RECIPES["unet-phasecells"] = ["--arch", "unet", "--in-channels", "1", "--class-names", "background", "cell",
                              "boundary", "--depth", "4", "--base-width", "16", "--crop", "256", "--batch-size", "8"]
RECIPES["maskrcnn-phasecells"] = ["--arch", "maskrcnn", "--in-channels", "1", "--class-names", "cell", "--backbone",
                                  "resnet18", "--fpn-channels", "128", "--mask-head-channels", "128",
                                  "--box-batch-size", "256", "--crop", "384", "--batch-size", "2"]
DATASETS = {"nuclei": ("dsb2018_train", "dsb2018_val.txt"), "phasecells": ("usiigaci_cells", "usiigaci_val.txt")}
"""Per model family: the dataset folder under ../shared/data and its held-out list under recipes/."""


def dataset_of(model: str) -> tuple[Path, Path]:
    """The model's dataset folder and held-out list."""
    folder, held_out = DATASETS[model.split("-", 1)[1]]
    return DATA / folder, REPO / "recipes" / held_out


def group_names(model: str) -> tuple[str, ...]:
    from napari_unet_maskrcnn.core.training.groups import APPEARANCE_GROUPS, PHASE_GROUPS

    return PHASE_GROUPS if model.endswith("phasecells") else APPEARANCE_GROUPS


def dataset_items(model: str) -> list[dict]:
    """Every image of the model's dataset: stem, image and label paths, group, on the held-out list or not."""
    from napari_unet_maskrcnn.core.io import read_image
    from napari_unet_maskrcnn.core.training.groups import appearance_group, phase_group

    dataset, held_out_list = dataset_of(model)
    held_out = set(held_out_list.read_text().split())
    items = []
    for path in sorted((dataset / "images").iterdir()):
        (label,) = (dataset / "labels").glob(f"{path.stem}.*")
        if model.endswith("phasecells"):
            group = phase_group(np.asarray(read_image(label).data))
        else:
            group = appearance_group(np.asarray(read_image(path).data))
        items.append({"stem": path.stem, "image": path, "labels": label, "held_out": path.stem in held_out,
                      "group": group})
    return items


def link_folder(folder: Path, paths: list[Path]) -> Path:
    """``folder`` holding links to ``paths`` (a folder of this script's own under --work)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return folder


def train(model: str, images: Path, output: Path, args) -> dict:
    """Train a model file from scratch on the images linked in ``images`` (reused if it exists)."""
    started = time.time()
    if output.is_file():
        print(f"{output}: exists, reused", file=sys.stderr)
        return {"file": str(output), "reused": True}
    cli("train", *RECIPES[model], "--images", str(images), "--labels", str(dataset_of(model)[0] / "labels"),
        "--val-fraction", "0", "--minutes", str(args.minutes), "--seed", str(args.seed),
        "--precision", args.precision, "--quiet", "--output", str(output))
    return {"file": str(output), "minutes": round((time.time() - started) / 60, 1)}


def score(model: str, model_file: Path, items: list[dict], work: Path) -> dict:
    """Figures of ``model_file`` on ``items``: instances (U-Nets: split from the classes) and, for U-Nets,
    the classes (foreground IoU)."""
    labels = link_folder(work / "labels", [item["labels"] for item in items])
    images = [str(item["image"]) for item in items]
    unet = model.startswith("unet")
    cli("segment", *images, "--model", str(model_file), "--output", str(work / "instances"), "--quiet",
        *(["--split-instances"] if unet else []))
    figures = {"images": len(items), "instances": instance_figures(labels, work / "instances")}
    if unet:
        cli("segment", *images, "--model", str(model_file), "--output", str(work / "classes"), "--quiet")
        figures["classes"] = semantic_figures(labels, work / "classes")
    return figures


def headline(figures: dict) -> dict:
    """The figures averaged over groups: AP(0.5) and, for U-Nets, the foreground IoU."""
    out = {"ap50": figures["instances"]["ap50"]}
    if "classes" in figures:
        out["foreground_iou"] = figures["classes"]["foreground_iou"]
    return out


def main() -> int:
    from napari_unet_maskrcnn.core.training.groups import APPEARANCE_GROUPS, PHASE_GROUPS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(RECIPES), default="unet-nuclei")
    parser.add_argument("--minutes", type=float, required=True, help="training time of each model")
    parser.add_argument("--groups", nargs="+", choices=APPEARANCE_GROUPS + PHASE_GROUPS,
                        help="default: every group of the model's dataset")
    parser.add_argument("--work", type=Path, help="default .train/rotation/MODEL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--max-test", type=int, default=60, help="images of a held-out group scored (unseen)")
    args = parser.parse_args()
    dataset = dataset_of(args.model)[0]
    if not dataset.is_dir():
        print(f"needs the data in {dataset}", file=sys.stderr)
        return 2
    groups = args.groups or list(group_names(args.model))
    if set(groups) - set(group_names(args.model)):
        print(f"--groups: {args.model}'s groups are {', '.join(group_names(args.model))}", file=sys.stderr)
        return 2
    work = args.work or REPO / ".train" / "rotation" / args.model
    items = dataset_items(args.model)
    training = [item for item in items if not item["held_out"]]
    import platform

    result: dict = {"model": args.model, "date": time.strftime("%Y-%m-%d"), "minutes": args.minutes,
                    "seed": args.seed, "precision": args.precision, "cpu": platform.processor() or platform.machine(),
                    "recipe": RECIPES[args.model], "groups": {}}
    reference_images = link_folder(work / "train_all", [item["image"] for item in training])
    result["reference"] = train(args.model, reference_images, work / "reference.safetensors", args)
    result["reference"]["train_images"] = len(training)
    for group in groups:
        members = [item for item in items if item["group"] == group]
        held = [item for item in members if item["held_out"]]
        unseen = (held + [item for item in members if not item["held_out"]])[:args.max_test]
        fold_images = link_folder(work / f"train_without_{group}",
                                  [item["image"] for item in training if item["group"] != group])
        fold_file = work / f"without_{group}.safetensors"
        entry = {"train": train(args.model, fold_images, fold_file, args),
                 "train_images": sum(item["group"] != group for item in training),
                 "group_images": len(members), "group_held_out_images": len(held)}
        entry["unseen"] = score(args.model, fold_file, unseen, work / f"score_{group}_unseen")
        if held:
            entry["unseen_heldout"] = score(args.model, fold_file, held, work / f"score_{group}_unseen_heldout")
            entry["reference_heldout"] = score(args.model, work / "reference.safetensors", held,
                                               work / f"score_{group}_reference_heldout")
        result["groups"][group] = entry
        print(json.dumps({group: {k: headline(v) for k, v in entry.items() if isinstance(v, dict) and "instances" in v}}),
              file=sys.stderr, flush=True)
    for kind in ("unseen", "unseen_heldout", "reference_heldout"):
        rows = [headline(entry[kind]) for entry in result["groups"].values() if kind in entry]
        if rows:
            result.setdefault("mean_over_groups", {})[kind] = {
                key: float(np.mean([row[key] for row in rows])) for key in rows[0]} | {"groups": len(rows)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
