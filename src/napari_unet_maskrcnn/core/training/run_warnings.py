"""What a user must know about a training run, for every front end (API, command line, dock).

:func:`validation_warnings` before the run (no validation at all; validation slices from a
stack whose other slices train), :func:`collapse_warning` after it (the kept model learned
nothing useful). ``api.train`` sends each as a ``TrainEvent("warning")`` to ``on_progress``
(the dock shows it, the command line prints it), or raises it as a :class:`TrainingWarning`
through :mod:`warnings` when there is no ``on_progress``; ``TrainResult.warnings`` keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .config import TrainConfig


class TrainingWarning(UserWarning):
    """A training run that will not give what the user expects (raised by ``api.train``)."""


def validation_warnings(pairs: Sequence, config: TrainConfig, sources: Mapping[str, str] | None = None) -> list[str]:
    """What the user must know about the validation of a run on ``pairs`` (TrainingPair list).

    No validation at all (too few pairs for the share), and validation slices taken from a
    stack whose other slices train (neighbouring slices look alike: the score is optimistic).
    ``sources`` maps each pair's name to what it came from (a layer pair, a stack); None: each
    pair is its own source.
    """
    from .data import split_pairs

    if config.val_fraction <= 0 and not config.val_names:
        return []
    train, val = split_pairs(pairs, val_fraction=config.val_fraction, val_names=config.val_names,
                             seed=config.seed)
    if not val:
        return [f"No validation: {len(pairs)} training image(s) with a validation fraction of "
                f"{config.val_fraction:g} leave none to hold out, so the last epoch is kept, unscored. "
                "Add more images (or all annotated slices of a stack) to validate."]
    source = (lambda name: sources[name]) if sources is not None else (lambda name: name)
    shared = sorted({source(pair.name) for pair in val} & {source(pair.name) for pair in train})
    if shared:
        return [f"Validation slices come from the same stack as training slices ({', '.join(shared)}): "
                "neighbouring slices look alike, so the validation score is optimistic."]
    return []


def collapse_warning(arch: str, metrics: Mapping) -> str | None:
    """A warning when the kept model's validation says it learned nothing useful, else None.

    U-Net: at most one class scores an IoU above 0 (it predicts one class everywhere);
    Mask R-CNN: no validation object found (recall 0 at IoU 0.5).
    """
    if arch == "unet":
        ious = {key[4:]: value for key, value in metrics.items() if key.startswith("iou_") and value is not None}
        if len(ious) >= 2 and sum(value > 0 for value in ious.values()) <= 1:
            return ("Training collapsed to one class: on the validation images the model predicts "
                    f"({', '.join(f'{name} IoU {value:.2f}' for name, value in ious.items())}). Train "
                    "longer, label more of the rarer classes, or check that the labels match the image.")
    elif metrics.get("recall50") == 0:
        return ("The model finds no object in the validation images (recall 0). Train longer, "
                "or check that the labels match the image.")
    return None
