"""``unet-maskrcnn train``: train a U-Net or Mask R-CNN model file from folders of images and labels.

    unet-maskrcnn train --arch {unet,maskrcnn} --images DIR --labels DIR --output MODEL.safetensors
                  [--base NAME_OR_FILE] [--epochs N] [--minutes N] [--val-fraction F | --val-list FILE]
                  [--device DEV] [--seed S] [--crop N] [--batch-size N] [--lr F] [--in-channels N]
                  [--channel N] [--label-kind {instances,classes,painted}] [--class-names NAME ...] [--class-weights W ...]
                  [--depth N] [--width N] [--backbone NAME] [--fpn-channels N]
                  [--resume CHECKPOINT] [--checkpoint-dir DIR] [--checkpoint-every N]
                  [--bf16 | --no-bf16] [--no-augment] [--quiet]

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

from .errors import EXIT_CLASH, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
DEFAULT_EPOCHS = 50


def add_train_parser(commands) -> None:
    """Register the ``train`` subcommand on an ``argparse`` subparsers object."""
    parser = commands.add_parser(
        "train", help="train a U-Net or Mask R-CNN model from images and label images",
        description="Train a model file from folders of images and label images matched by file stem.",
    )
    parser.add_argument("--arch", required=True, choices=("unet", "maskrcnn"),
                        help="unet: per-pixel classes; maskrcnn: instances")
    parser.add_argument("--images", required=True, type=Path, metavar="DIR",
                        help="training images (TIFF, PNG, JPEG; grey, RGB, RGBA, 8/16 bit)")
    parser.add_argument("--labels", required=True, type=Path, metavar="DIR",
                        help="label images with the same stems (0 = background / unlabelled)")
    parser.add_argument("--output", required=True, type=Path, metavar="MODEL_FILE",
                        help=f"model file to write ({MODEL_SUFFIX})")
    parser.add_argument("--base", metavar="NAME_OR_FILE", help="start from this model's weights (fine-tuning)")
    parser.add_argument("--epochs", type=int,
                        help=f"epochs to train (default {DEFAULT_EPOCHS} unless --minutes is given)")
    parser.add_argument("--minutes", type=float,
                        help="time budget; with --epochs, training stops at whichever comes first")
    held_out = parser.add_mutually_exclusive_group()
    held_out.add_argument("--val-fraction", type=float, default=0.2,
                          help="part of the images held out for validation, drawn with --seed (0.2)")
    held_out.add_argument("--val-list", type=Path, metavar="FILE",
                          help="file listing the validation image stems, one per line (never trained on)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--crop", type=int, default=256, help="training crop side in pixels (256)")
    parser.add_argument("--batch-size", type=int, help="crops per step (unet 8, maskrcnn 4)")
    parser.add_argument("--lr", type=float, help="peak learning rate (unet 1e-3, maskrcnn 3e-4)")
    parser.add_argument("--in-channels", type=int, help="network input channels (default: from the images)")
    parser.add_argument("--channel", type=int, help="train on this channel of multichannel images")
    parser.add_argument("--label-kind", choices=("instances", "classes", "painted"), default="instances",
                        help="unet: labels are object ids (default; learns background/object/boundary), "
                             "class maps 1..K with 0 = unlabelled (ignored; outputs 0..K-1), or 'painted' "
                             "class maps whose values are the outputs (1..K; output 0 'unlabelled' unused)")
    parser.add_argument("--class-names", nargs="+", metavar="NAME",
                        help="unet classes: one name per class; unet instances / maskrcnn: the object name")
    parser.add_argument("--class-weights", nargs="+", type=float, metavar="W",
                        help="unet: loss weight per class (default: 1 1 5 for instances, equal for classes)")
    parser.add_argument("--depth", type=int, default=4, help="unet: downsampling steps (4)")
    parser.add_argument("--width", type=int, default=32, help="unet: channels of the first level (32)")
    parser.add_argument("--backbone", default="resnet18", choices=("resnet18", "resnet34", "resnet50"),
                        help="maskrcnn: backbone (resnet18)")
    parser.add_argument("--fpn-channels", type=int, default=256, help="maskrcnn: feature pyramid width (256)")
    parser.add_argument("--mask-head-channels", type=int,
                        help="maskrcnn: mask head width (256); 128 halves the step time on CPU")
    parser.add_argument("--box-head-size", type=int, help="maskrcnn: box head width (1024)")
    parser.add_argument("--box-batch-size", type=int,
                        help="maskrcnn: sampled proposals per image for the heads (512)")
    parser.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="continue from a last.pt checkpoint")
    parser.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                        help="folder for last.pt and best.safetensors (default: OUTPUT's name + '.checkpoints')")
    parser.add_argument("--checkpoint-every", type=int, default=1, help="epochs between checkpoints (1)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="mixed precision: bf16 on CPUs that have it, AMP on CUDA (default: where supported)")
    parser.add_argument("--augment", default="standard",
                        choices=("standard", "strong", "histology", "robust", "none"),
                        help="augmentation recipe: standard (flips, scale 0.75-1.33, intensity), strong (any "
                             "rotation, H&E stain and colour jitter, inverted contrast, dim objects, scale 0.5-2), "
                             "histology (any rotation, stain jitter), robust (scale 0.7-1.4 per axis, stain jitter "
                             "on colour images, grey images inverted, defocus blur, dimming), none")
    parser.add_argument("--balance-groups", nargs="*", type=float, metavar="W",
                        help="group-balanced epochs by imaging modality (fluorescence, stained, brightfield): "
                             "equal shares, or one weight per group in that order")
    parser.add_argument("--no-augment", action="store_true", help="train on plain crops (same as --augment none)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing model file and checkpoints of an earlier run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> int:
    """Run ``unet-maskrcnn train``; returns the exit status."""
    from ..core.io import ImageReadError
    from ..core.model_file import ModelFileError
    from ..core.training import load_pairs, read_name_list

    if args.output.suffix != MODEL_SUFFIX or args.output.is_dir():
        return _usage(f"--output must be a {MODEL_SUFFIX} file name, got '{args.output}'.")
    if args.arch == "maskrcnn" and args.label_kind != "instances":
        return _usage("Mask R-CNN learns from instance labels: drop --label-kind classes.")
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
        config = _config(args, val_names)
    except (ValueError, OSError, ImageReadError) as err:
        return _usage(str(err))
    print(f"{len(pairs)} image pairs from '{args.images}' and '{args.labels}'.", file=sys.stderr)
    reporter = _Reporter(args.quiet)
    started = time.time()
    try:
        result = _train(args, pairs, config, reporter)
    except KeyboardInterrupt:
        reporter.close()
        written = args.output.is_file() and args.output.stat().st_mtime >= started
        print("\nInterrupted: " + (f"the best model so far was written to '{args.output}'." if written
                                   else "training had not started; nothing was written."), file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, ModelFileError) as err:
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
    from ..core.validation import check_number

    check_number("--epochs", args.epochs, low=1, integer=True)
    check_number("--minutes", args.minutes, low=0.01)
    check_number("--val-fraction", args.val_fraction, low=0, high=0.9)
    check_number("--crop", args.crop, low=16, high=8192, integer=True, unit="pixels")
    check_number("--batch-size", args.batch_size, low=1, high=1024, integer=True)
    check_number("--lr", args.lr, low=1e-9, high=1.0)
    check_number("--in-channels", args.in_channels, low=1, high=64, integer=True)
    check_number("--channel", args.channel, low=0, integer=True)
    check_number("--depth", args.depth, low=1, high=8, integer=True)
    check_number("--width", args.width, low=1, high=1024, integer=True)
    check_number("--fpn-channels", args.fpn_channels, low=1, high=4096, integer=True)
    check_number("--checkpoint-every", args.checkpoint_every, low=1, integer=True)
    for weight in args.class_weights or []:
        check_number("--class-weights", weight, low=0, high=1e6)


def _planned_outputs(args) -> list:
    """The model file, and the checkpoint files unless ``--resume`` continues that folder's run."""
    from ..core.output_paths import PlannedOutput
    from ..core.training.checkpoint import BEST_FILE, CHECKPOINT_FILE

    outputs = [PlannedOutput(args.output, "the model file (--output)")]
    folder = args.checkpoint_dir or args.output.with_name(args.output.stem + ".checkpoints")
    resumed = args.resume.parent if args.resume and not args.resume.is_dir() else args.resume
    if resumed is None or Path(resumed).resolve() != Path(folder).resolve():
        outputs += [PlannedOutput(folder / name, f"a checkpoint ('{name}')") for name in (CHECKPOINT_FILE, BEST_FILE)]
    return outputs


def _train(args, pairs, config, reporter):
    from ..core.training import train_maskrcnn, train_unet

    provenance = {
        "data": {"images_dir": str(args.images.resolve()), "labels_dir": str(args.labels.resolve())},
        "command_line": command_line(args),
    }
    common = dict(output=args.output, config=config, in_channels=args.in_channels, channel=args.channel,
                  provenance=provenance, on_progress=reporter)
    if args.arch == "unet":
        return train_unet(pairs, label_kind=args.label_kind, class_names=args.class_names,
                          depth=args.depth, base_width=args.width, **common)
    if args.class_names is not None and len(args.class_names) != 1:
        raise ValueError("Mask R-CNN models here have one object class: give one --class-names.")
    builder_options = {
        key: value for key, value in (
            ("mask_head_channels", args.mask_head_channels), ("box_head_size", args.box_head_size),
            ("box_batch_size_per_image", args.box_batch_size),
        ) if value is not None
    }
    return train_maskrcnn(pairs, class_name=(args.class_names or ["object"])[0], backbone=args.backbone,
                          fpn_channels=args.fpn_channels, builder_options=builder_options, **common)


def _config(args, val_names):
    from ..core.training import TrainConfig
    from ..core.training.augment import AUGMENT_PRESETS

    epochs = args.epochs if args.epochs is not None or args.minutes is not None else DEFAULT_EPOCHS
    checkpoint_dir = args.checkpoint_dir or args.output.with_name(args.output.stem + ".checkpoints")
    return TrainConfig(
        epochs=epochs, minutes=args.minutes, crop=args.crop, batch_size=args.batch_size, lr=args.lr,
        val_fraction=args.val_fraction, val_names=val_names, seed=args.seed, device=args.device,
        amp=args.bf16, augment=AUGMENT_PRESETS["none" if args.no_augment else args.augment],
        checkpoint_dir=str(checkpoint_dir), checkpoint_every=args.checkpoint_every,
        resume=str(args.resume) if args.resume else None, base=args.base, class_weights=args.class_weights,
        balance_groups=args.balance_groups,
    )


def command_line(args: argparse.Namespace) -> str:
    """The ``train`` command with every option spelled out (defaults included), for provenance."""
    words = ["unet-maskrcnn", "train"]
    for key, value in vars(args).items():
        if key in ("command", "quiet") or value is None or (value is False and key != "bf16"):
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
