"""Train the object-size estimator (core/size_estimator.py) and validate it by holding out whole groups.

    python scripts/train_size_estimator.py [--augment 6] [--epochs 400] [--seed 0] [--balance 0] [--out FILE] [--json]

Data: the training images of DSB2018 (nuclei) and Usiigaci (phase-contrast cells) in
../shared/data, never the held-out lists of recipes/ (so the scale table of
docs/OBJECT_SIZE.md is measured on images the estimator never saw). Each image's target is
the median equivalent diameter of its labelled objects. Every image is described
(``scale_space_descriptor``) at native size and at ``--augment`` random rescales,
log-uniform in x0.25..x4, limited so the objects stay 3..300 px across and the image at
least 32 px; at most a 1024 px window (as at run time) is described.

Groups (``group_of``): DSB2018 by appearance — fluorescence on small frames (<= 360 px),
fluorescence on large frames, stained (colour), brightfield (light background) — and
Usiigaci phase contrast. Two validations, both reported per group and recorded in the
weights' provenance: whole groups held out in rotation (train on the others: a kind of
image the estimator has never seen), and images held out in 4 folds (new images of known
kinds), with how often confident estimates land within x1.5. Figures: median |log2 error|
and the shares within x1.25 / x1.5 / x2 of the truth. The shipped file is then trained on
all groups. Descriptors are cached in .train/size_descriptors.npz.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_bundled import DATA, REPO  # noqa: E402

CACHE = REPO / ".train" / "size_descriptors.npz"
PEAK_WEIGHT = 0.3
GROUPS = ("fluorescence-small", "fluorescence-large", "stained", "brightfield", "phase")


def group_of(dataset: str, image: np.ndarray) -> str:
    """The validation group of a training image (see the module docstring)."""
    from napari_unet_maskrcnn.core.training.groups import appearance_group

    return "phase" if dataset == "usiigaci_cells" else appearance_group(image)


def training_items():
    """(name, dataset, image, labels) of every training image (held-out lists excluded)."""
    from napari_unet_maskrcnn.core.io import read_image

    for dataset, val_list in (("dsb2018_train", "dsb2018_val.txt"), ("usiigaci_cells", "usiigaci_val.txt")):
        held_out = set((REPO / "recipes" / val_list).read_text().split())
        for path in sorted((DATA / dataset / "images").iterdir()):
            if path.stem in held_out:
                continue
            (label_path,) = (DATA / dataset / "labels").glob(f"{path.stem}.*")
            image = np.asarray(read_image(path).data)
            if image.ndim == 3 and image.shape[-1] == 4:
                image = image[..., :3]
            yield path.stem, dataset, image, np.asarray(read_image(label_path).data)


def grey_plane(image: np.ndarray) -> np.ndarray:
    """What the estimator sees at run time: the mean of the normalised channels of an RGB-model input."""
    from napari_unet_maskrcnn.core.inputs import prepare_plane

    source = prepare_plane(image, 3)
    return source.read(0, source.shape[0], 0, source.shape[1]).mean(axis=0)


def rescaled_window(grey: np.ndarray, scale: float, rng: np.random.Generator, side: int) -> np.ndarray:
    """A random window of ``grey`` resized by ``scale`` (anti-aliased linear), at most ``side`` px after resizing."""
    from skimage.transform import rescale

    need = int(np.ceil(side / scale))
    h, w = grey.shape
    y0 = int(rng.integers(0, max(h - need, 0) + 1))
    x0 = int(rng.integers(0, max(w - need, 0) + 1))
    crop = grey[y0:y0 + need, x0:x0 + need]
    if scale == 1.0:
        return crop
    return rescale(crop, scale, order=1, anti_aliasing=scale < 1, preserve_range=True).astype(np.float32)


def describe_all(augment: int, seed: int) -> dict[str, np.ndarray]:
    """Descriptors (N, F, K), log2 target diameters (N,), groups (N,), image names (N,), scales (N,)."""
    from napari_unet_maskrcnn.core.object_size import median_diameter
    from napari_unet_maskrcnn.core.size_estimator import WINDOW, scale_space_descriptor

    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"x": [], "y": [], "group": [], "name": [], "scale": []}
    start = time.perf_counter()
    for i, (name, dataset, image, labels) in enumerate(training_items()):
        diameter = median_diameter(labels)
        if diameter is None:
            continue
        grey, group = grey_plane(image), group_of(dataset, image)
        low = max(0.25, 3.0 / diameter, 32.0 / min(grey.shape))
        high = min(4.0, 300.0 / diameter)
        scales = [1.0] + [float(2.0 ** rng.uniform(np.log2(low), np.log2(high))) for _ in range(augment)]
        for scale in scales:
            window = rescaled_window(grey, scale, rng, WINDOW)
            rows["x"].append(scale_space_descriptor(window))
            rows["y"].append(np.log2(diameter * scale))
            rows["group"].append(group)
            rows["name"].append(name)
            rows["scale"].append(scale)
        if i % 50 == 0:
            print(f"  described {i + 1} images ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return {key: np.asarray(value) for key, value in rows.items()}


def group_weights(groups: np.ndarray, power: float) -> np.ndarray:
    """Per-sample loss weights (N,), mean 1: each group's share of the loss goes as its size ** (1 - power)
    (0 = every sample alike, 1 = every group alike: Usiigaci's 40 images weigh as much as DSB2018's 400)."""
    _, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    weights = counts[index].astype(np.float64) ** -power
    return weights / weights.mean()


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int, hidden: int = 16, kernel: int = 5,
          peak_weight: float = PEAK_WEIGHT, weights: np.ndarray | None = None):
    """Fit the 1-D network of ``SizeRegressor``; returns its tensors (NumPy).

    Loss: Huber on the expected log2 diameter, plus ``peak_weight`` times the cross-entropy
    of the bin distribution against a Gaussian (0.25 octave) around the target's bin, so the
    distribution peaks where the answer is and its spread means something; per sample times
    ``weights`` (N,) when given.
    """
    import torch

    from napari_unet_maskrcnn.core.size_estimator import sigmas

    torch.set_num_threads(1)  # a tiny network: one thread is faster than two fighting
    torch.manual_seed(seed)
    n_features = x.shape[1]
    convs = torch.nn.ModuleList([
        torch.nn.Conv1d(n_features, hidden, kernel, padding=kernel // 2),
        torch.nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2),
        torch.nn.Conv1d(hidden, 1, kernel, padding=kernel // 2),
    ])
    offset = torch.nn.Parameter(torch.tensor(1.5))  # diameter ~ 2.8 sigma for a disk's LoG peak
    log_sigma = torch.tensor(np.log2(sigmas()), dtype=torch.float32)
    xs, ys = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    ws = torch.ones(len(ys)) if weights is None else torch.tensor(weights, dtype=torch.float32)
    optimiser = torch.optim.Adam([*convs.parameters(), offset], lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    batch = 256
    for _ in range(epochs):
        order = torch.randperm(len(xs))
        for start in range(0, len(xs), batch):
            idx = order[start:start + batch]
            h = xs[idx]
            for j, conv in enumerate(convs):
                h = conv(h)
                if j < 2:
                    h = torch.relu(h)
            log_p = torch.log_softmax(h[:, 0], dim=1)
            prediction = (log_p.exp() * log_sigma).sum(1) + offset
            loss = torch.nn.functional.huber_loss(prediction, ys[idx], delta=0.5, reduction="none")
            if peak_weight:
                target = torch.exp(-0.5 * ((log_sigma[None] + offset.detach() - ys[idx, None]) / 0.25) ** 2)
                target = target / target.sum(1, keepdim=True).clamp_min(1e-12)
                loss = loss + peak_weight * -(target * log_p).sum(1)
            loss = (loss * ws[idx]).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
    tensors = {f"conv{i}.{kind}": getattr(conv, kind).detach().numpy().copy()
               for i, conv in enumerate(convs) for kind in ("weight", "bias")}
    tensors["offset"] = offset.detach().numpy().reshape(1).copy()
    return tensors


def scores(tensors: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """Median |log2 error| and the shares within x1.25 / x1.5 / x2 of the truth, and the mean spread."""
    from napari_unet_maskrcnn.core.size_estimator import SizeRegressor

    regressor = SizeRegressor(tensors)
    estimates = [regressor.estimate(d) for d in x]
    error = np.abs(np.log2([e.diameter for e in estimates]) - y)
    return {"n": int(len(y)), "median_abs_log2_error": float(np.median(error)),
            "within_1.25x": float((error <= np.log2(1.25)).mean()),
            "within_1.5x": float((error <= np.log2(1.5)).mean()),
            "within_2x": float((error <= 1.0).mean()),
            "mean_spread": float(np.mean([e.spread for e in estimates]))}


def image_folds(x, y, groups, names, epochs: int, seed: int, folds: int = 4, balance: float = 0.0) -> dict:
    """Per group, images held out in ``folds`` random folds (every rescale of an image in one fold): how
    the estimator does on new images of kinds it was trained on; plus, over all groups, the share of
    confident estimates (spread <= MAX_SPREAD) and how often those and the others land within x1.5."""
    from napari_unet_maskrcnn.core.size_estimator import MAX_SPREAD, SizeRegressor

    rng = np.random.default_rng(seed)
    fold_of = {name: int(rng.integers(0, folds)) for name in np.unique(names)}
    fold = np.array([fold_of[name] for name in names])
    errors, spreads = np.zeros(len(y)), np.zeros(len(y))
    for k in range(folds):
        held = fold == k
        regressor = SizeRegressor(train(x[~held], y[~held], epochs, seed,
                                        weights=group_weights(groups[~held], balance)))
        estimates = [regressor.estimate(d) for d in x[held]]
        errors[held] = np.abs(np.log2([e.diameter for e in estimates]) - y[held])
        spreads[held] = [e.spread for e in estimates]
    result = {}
    for group in GROUPS:
        e = errors[groups == group]
        result[group] = {"n": int(e.size), "median_abs_log2_error": float(np.median(e)),
                         "within_1.25x": float((e <= np.log2(1.25)).mean()),
                         "within_1.5x": float((e <= np.log2(1.5)).mean()), "within_2x": float((e <= 1).mean())}
        print(f"{group:20s} image folds: {json.dumps(result[group])}", file=sys.stderr)
    sure = spreads <= MAX_SPREAD
    result["confident"] = {"share": float(sure.mean()),
                           "within_1.5x": float((errors[sure] <= np.log2(1.5)).mean()),
                           "others_within_1.5x": float((errors[~sure] <= np.log2(1.5)).mean()) if (~sure).any() else None}
    print(f"confident estimates: {json.dumps(result['confident'])}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--augment", type=int, default=6, help="random rescales per image (besides native)")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--balance", type=float, default=0.0,
                        help="group balance of the loss: 0 = every sample alike, 1 = every group alike")
    parser.add_argument("--out", type=Path, help="write the weights here (default: only validate)")
    parser.add_argument("--json", action="store_true", help="print the validation figures as JSON")
    args = parser.parse_args(argv)

    if CACHE.exists() and json.loads(str(np.load(CACHE)["settings"])) == {"augment": args.augment, "seed": args.seed}:
        data = dict(np.load(CACHE))
    else:
        data = describe_all(args.augment, args.seed)
        CACHE.parent.mkdir(exist_ok=True)
        np.savez(CACHE, settings=json.dumps({"augment": args.augment, "seed": args.seed}), **data)
    x, y, groups = data["x"], data["y"], data["group"]
    native = data["scale"] == 1.0

    figures: dict = {"groups": {}}
    for group in GROUPS:
        held = groups == group
        if not held.any():
            continue
        tensors = train(x[~held], y[~held], args.epochs, args.seed, weights=group_weights(groups[~held], args.balance))
        figures["groups"][group] = {"all_scales": scores(tensors, x[held], y[held]),
                                    "native": scores(tensors, x[held & native], y[held & native])}
        print(f"{group:20s} held out: {json.dumps(figures['groups'][group]['all_scales'])}", file=sys.stderr)
    per_group = [g["all_scales"] for g in figures["groups"].values()]
    figures["mean_over_groups"] = {key: float(np.mean([g[key] for g in per_group])) for key in per_group[0]}
    print(f"mean over groups: {json.dumps(figures['mean_over_groups'])}", file=sys.stderr)
    figures["image_folds"] = image_folds(x, y, groups, data["name"], args.epochs, args.seed, balance=args.balance)

    if args.out:
        from safetensors.numpy import save_file

        tensors = train(x, y, args.epochs, args.seed, weights=group_weights(groups, args.balance))
        figures["training_fit"] = scores(tensors, x, y)
        provenance = {
            "trained_by": "scripts/train_size_estimator.py",
            "date": time.strftime("%Y-%m-%d"),
            "data": {"DSB2018 stage1_train (CC0; Caicedo et al., Nature Methods 2019), recipes/dsb2018_val.txt excluded":
                     int((groups != "phase").sum() // (args.augment + 1)),
                     "Usiigaci sets (MIT; Tsai et al., SoftwareX 2019), recipes/usiigaci_val.txt excluded":
                     int((groups == "phase").sum() // (args.augment + 1))},
            "augment": args.augment, "epochs": args.epochs, "seed": args.seed, "balance": args.balance,
            "group_held_out_validation": figures["groups"], "mean_over_groups": figures["mean_over_groups"],
            "image_folds_validation": figures["image_folds"],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.astype(np.float32) for k, v in tensors.items()}, str(args.out),
                  metadata={"provenance": json.dumps(provenance)})
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
