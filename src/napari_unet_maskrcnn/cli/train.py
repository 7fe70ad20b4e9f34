"""``unet-maskrcnn train``: train a U-Net or Mask R-CNN model file from folders of images and labels.

Usage: ``unet-maskrcnn train --help`` (generated from the parser; the settings' flags, defaults and
ranges are declared in :mod:`..core.settings`, shared with ``api.train`` and the Train dock; ``--width``,
``--bf16`` / ``--no-bf16`` and ``--no-augment`` are deprecated spellings of ``--base-width``,
``--precision`` and ``--augment none``). Training runs through ``api.train``.

Images and label images are matched by file stem. One line per epoch goes to stdout. The
model file is written atomically at the end; on Ctrl-C the best model so far is written
and the command exits with status 130. An existing model file, or checkpoints of another
run in the checkpoint folder, stop the command before it starts unless ``--overwrite``
(``--resume`` continues the checkpoints of its own folder).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from ..core.model_file import MODEL_SUFFIX
from ..core.settings import DEFAULT_EPOCHS, TRAIN_SETTINGS  # noqa: F401  (DEFAULT_EPOCHS: the usage text)

from .errors import EXIT_CLASH, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE


def add_train_parser(commands) -> None:
    """Register the ``train`` subcommand on an ``argparse`` subparsers object.

    The settings' flags, defaults, ranges and help come from :data:`~..core.settings.TRAIN_SETTINGS`
    (as ``api.train``'s defaults and the Train dock's fields).
    """
    settings = TRAIN_SETTINGS
    parser = commands.add_parser(
        "train", help="train a U-Net or Mask R-CNN model from images and label images",
        description="Train a model file from folders of images and label images matched by file stem.",
    )
    settings["arch"].add_argument(parser, required=True, default=None)
    parser.add_argument("--images", required=True, type=Path, metavar="DIR",
                        help="training images (TIFF, PNG, JPEG; grey, RGB, RGBA, 8/16 bit)")
    parser.add_argument("--labels", required=True, type=Path, metavar="DIR",
                        help="label images with the same stems (0 = background / unlabelled)")
    parser.add_argument("--output", required=True, type=Path, metavar="MODEL_FILE",
                        help=f"model file to write ({MODEL_SUFFIX})")
    settings["base"].add_argument(parser, metavar="NAME_OR_FILE")
    settings["epochs"].add_argument(parser)
    settings["minutes"].add_argument(parser)
    held_out = parser.add_mutually_exclusive_group()
    settings["val_fraction"].add_argument(held_out)
    held_out.add_argument("--val-list", type=Path, metavar="FILE",
                          help="file listing the validation image stems, one per line (never trained on)")
    for name in ("device", "seed", "crop", "batch_size", "lr", "in_channels", "channel", "label_kind"):
        settings[name].add_argument(parser)
    parser.add_argument("--class-names", nargs="+", metavar="NAME",
                        help="unet classes: one name per class; unet instances / maskrcnn: the object name")
    parser.add_argument("--class-weights", nargs="+", type=float, metavar="W",
                        help="unet: loss weight per class (default: 1 1 5 for instances, equal for classes)")
    for name in ("depth", "base_width", "backbone", "fpn_channels", "mask_head_channels", "box_head_size",
                 "box_batch_size", "mask_roi_size"):
        settings[name].add_argument(parser)
    parser.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="continue from a last.pt checkpoint")
    parser.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                        help="folder for last.pt and best.safetensors (default: OUTPUT's name + '.checkpoints')")
    settings["checkpoint_every"].add_argument(parser)
    settings["precision"].add_argument(parser)
    parser.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                        help="deprecated spelling of --precision bf16")
    parser.add_argument("--no-bf16", dest="precision", action="store_const", const="fp32",
                        help="deprecated spelling of --precision fp32")
    settings["augment"].add_argument(parser)
    parser.add_argument("--no-augment", dest="augment", action="store_const", const="none",
                        help="deprecated spelling of --augment none")
    parser.add_argument("--balance-groups", nargs="*", type=float, metavar="W",
                        help="group-balanced epochs by imaging modality (fluorescence, stained, brightfield): "
                             "equal shares, or one weight per group in that order")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing model file and checkpoints of an earlier run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> int:
    """Run ``unet-maskrcnn train``; returns the exit status."""
    from .. import api
    from ..core.io import ImageReadError
    from ..api.training import load_pairs, read_name_list

    if args.output.suffix != MODEL_SUFFIX or args.output.is_dir():
        return _usage(f"--output must be a {MODEL_SUFFIX} file name, got '{args.output}'.")
    if args.arch == "maskrcnn" and args.label_kind != "instances":
        return _usage("Mask R-CNN learns from instance labels: drop --label-kind classes.")
    if args.arch != "maskrcnn" and args.mask_roi_size is not None:
        return _usage("--mask-roi-size is a Mask R-CNN setting: drop it for --arch unet.")
    try:
        _check_options(args)
    except (ValueError, TypeError) as err:
        return _usage(str(err))
    from ..core.output_paths import OutputClash, check_outputs

    try:
        check_outputs(_planned_outputs(args), [args.images, args.labels], overwrite=args.overwrite)
    except OutputClash as err:
        print(f"error: {err} Nothing was written.", file=sys.stderr)
        return EXIT_CLASH
    try:
        pairs = load_pairs(args.images, args.labels)
        val_names = read_name_list(args.val_list) if args.val_list else None
    except (ValueError, OSError, ImageReadError) as err:
        return _usage(str(err))
    print(f"{len(pairs)} image pairs from '{args.images}' and '{args.labels}'.", file=sys.stderr)
    reporter = _Reporter(args.quiet)
    started = time.time()
    try:
        result = _train(args, pairs, val_names, reporter)
    except KeyboardInterrupt:
        reporter.close()
        written = args.output.is_file() and args.output.stat().st_mtime >= started
        print("\nInterrupted: " + (f"the best model so far was written to '{args.output}'." if written
                                   else "training had not started; nothing was written."), file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, api.ModelFileError) as err:
        reporter.close()
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    reporter.close()
    best = ""
    if result.best_epoch is not None and result.best_metrics:
        metric = result.spec.provenance["validation"]["metric"]
        best = f"; best epoch {result.best_epoch}: {metric} {_fmt(result.best_metrics.get(metric))}"
    print(f"Wrote '{result.path}' ({result.stop_reason}, {len(result.history)} epochs, {result.steps} steps, "
          f"{result.elapsed_s / 60:.1f} min{best}).", file=sys.stderr)
    return EXIT_OK


def _check_options(args) -> None:
    """Numbers by name and range, before any image is read (ValueError / TypeError)."""
    from ..core.settings import check_settings
    from ..core.validation import check_number

    check_settings(TRAIN_SETTINGS, vars(args), "--")
    for weight in args.class_weights or []:
        check_number("--class-weights", weight, low=0, high=1e6)


def _planned_outputs(args) -> list:
    """The model file, and the checkpoint files unless ``--resume`` continues that folder's run."""
    from ..core.output_paths import PlannedOutput
    from ..api.training import CHECKPOINT_FILES

    outputs = [PlannedOutput(args.output, "the model file (--output)")]
    folder = args.checkpoint_dir or args.output.with_name(args.output.stem + ".checkpoints")
    resumed = args.resume.parent if args.resume and not args.resume.is_dir() else args.resume
    if resumed is None or Path(resumed).resolve() != Path(folder).resolve():
        outputs += [PlannedOutput(folder / name, f"a checkpoint ('{name}')") for name in CHECKPOINT_FILES]
    return outputs


def _train(args, pairs, val_names, reporter):
    from .. import api

    provenance = {
        "data": {"images_dir": str(args.images.resolve()), "labels_dir": str(args.labels.resolve())},
        "command_line": command_line(args),
    }
    checkpoint_dir = args.checkpoint_dir or args.output.with_name(args.output.stem + ".checkpoints")
    settings = {name: getattr(args, name) for name in TRAIN_SETTINGS if hasattr(args, name)}
    return api.train(
        pairs, args.output, **settings, class_names=args.class_names, class_weights=args.class_weights,
        val_names=val_names, checkpoint_dir=checkpoint_dir, resume=args.resume, balance_groups=args.balance_groups,
        provenance=provenance, on_progress=reporter, overwrite=True,  # --overwrite was checked with the checkpoints
    )


def command_line(args: argparse.Namespace) -> str:
    """The ``train`` command with every option spelled out (defaults included), for provenance."""
    words = ["unet-maskrcnn", "train"]
    for key, value in vars(args).items():
        if key in ("command", "quiet") or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + key)
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


class _Reporter:
    """Turns training events into a progress bar (stderr) and one line per epoch (stdout)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def __call__(self, event) -> None:
        if event.stage == "note":
            self._clear()
            print(event.message, file=sys.stderr)
        elif event.stage == "warning":  # core.training.run_warnings, as the dock shows them
            self._clear()
            print(f"warning: {event.message}", file=sys.stderr)
        elif event.stage == "step" and not self.quiet:
            self._advance(event)
        elif event.stage == "epoch":
            self._clear()
            print(epoch_line(event), flush=True)

    def _advance(self, event) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=event.steps_per_epoch, desc=f"epoch {event.epoch}", unit="step",
                            leave=False, file=sys.stderr)
        self.bar.update(1)
        if event.loss is not None:
            self.bar.set_postfix(loss=f"{event.loss:.4f}", refresh=False)

    def _clear(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self._clear()


def epoch_line(event) -> str:
    """``epoch 3/50  loss 0.4123  object_iou 0.812 *  lr 9.8e-04  0:01:23`` (* = best so far)."""
    report = event.report
    total = f"/{event.epochs}" if event.epochs is not None else ""
    parts = [f"epoch {report.epoch}{total}", f"loss {_fmt(report.losses.get('loss'))}"]
    parts += [f"{name} {_fmt(value)}" for name, value in report.metrics.items()]
    minutes, seconds = divmod(int(report.elapsed_s), 60)
    parts += [f"lr {report.lr:.1e}", f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"]
    return "  ".join(parts) + ("  *" if report.is_best and report.metrics else "")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE
