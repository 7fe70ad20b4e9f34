"""``unet-maskrcnn segment``: segment image files into label TIFFs (and per-object CSV tables).

Every input gets ``DIR/<input stem>.tif`` (uint16 labels; uint32 when more ids are needed),
instance models also ``DIR/<input stem>.csv`` (the per-instance table). Files are written
atomically: a failed or interrupted run leaves no partial output.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_segment_parser(commands) -> None:
    """Register the ``segment`` subcommand on an ``argparse`` subparsers object."""
    seg = commands.add_parser("segment", help="segment image files into label TIFFs")
    seg.add_argument("inputs", nargs="+", metavar="INPUT", help="TIFF, PNG or JPEG images")
    seg.add_argument("--model", required=True, help="model name (see 'models') or .safetensors file")
    seg.add_argument("--output", required=True, type=Path, metavar="DIR", help="output folder")
    seg.add_argument("--axes", help="input axes, e.g. YX, YXC, ZYX, TZYX, CZYX (default: from the file)")
    seg.add_argument("--channel", type=int, help="channel to segment in multichannel images")
    seg.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    seg.add_argument("--tile", type=int, default=512, help="tile edge in pixels (default 512)")
    seg.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                     help="auto: bfloat16 where the CPU/GPU computes it natively (default for U-Net); "
                          "fp32 (default for Mask R-CNN: bf16 costs it 1-2 points of AP)")
    seg.add_argument("--score-threshold", type=float,
                     help="instances: min score (default: the model's, else 0.5)")
    seg.add_argument("--mask-threshold", type=float, help="instances: mask cut-off (model's, else 0.5)")
    seg.add_argument("--nms-iou", type=float, help="instances: NMS IoU (model's, else 0.5)")
    seg.add_argument("--min-size", type=int, help="min object pixels (model's, else 10)")
    seg.add_argument("--diameter", type=float, metavar="D",
                     help="object diameter in pixels: each plane is resized so its objects match the "
                          "model's training size; 0 = off (native scale); default: automatic (estimated "
                          "by a first pass, rescaled only outside the model's trained range)")
    seg.add_argument("--z-link-iou", type=float, default=0.3,
                     help="IoU linking objects across z (instances and --split-instances), 0 = off (0.3)")
    seg.add_argument("--split-instances", action="store_true",
                     help="semantic models with a boundary class: write instances split from the "
                          "classes (seeded watershed) instead of the classes")
    seg.add_argument("--probabilities", action="store_true",
                     help="semantic: also write DIR/<stem>_probabilities.tif (float32)")
    seg.add_argument("--quiet", action="store_true", help="no progress bar")


def run_segment(args: argparse.Namespace) -> int:
    """Run ``unet-maskrcnn segment``; returns the exit status."""
    from .. import api

    try:
        spec = api.get_model_spec(args.model)
    except (api.ModelFileError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.output.exists() and not args.output.is_dir():
        print(f"error: --output '{args.output}' exists and is not a folder.", file=sys.stderr)
        return EXIT_USAGE
    created = _new_folders(args.output)
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        return _segment_all(args, spec.task)
    finally:  # failed, interrupted or nothing written: leave no empty folder behind
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _new_folders(folder: Path) -> list[Path]:
    """The folders that creating ``folder`` would add, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _segment_all(args: argparse.Namespace, task: str) -> int:
    from .. import api
    from ..core.object_size import describe_object_size

    failures = 0
    for text in args.inputs:
        try:
            written, result = _segment_one(Path(text), task, args)
        except (ValueError, OSError, api.ModelFileError) as err:
            failures += 1
            print(f"error: {text}: {err}", file=sys.stderr)
            continue
        if not args.quiet:
            print(f"{text}: {describe_object_size(result.object_size)}", file=sys.stderr)
            print(f"{text} -> {', '.join(str(p) for p in written)}", file=sys.stderr)
    if failures:
        print(f"{failures} of {len(args.inputs)} inputs failed; their outputs were not written.",
              file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def _segment_one(path: Path, task: str, args):
    from tqdm import tqdm

    from .. import api
    from ..core.axes import output_axes, validate_axes
    from ..core.io import read_image, write_labels

    image = read_image(path)
    axes = validate_axes(args.axes, image.data.shape) if args.axes else image.axes
    for warning in input_warnings(image, axes, axes_given=bool(args.axes)):
        print(f"warning: {path}: {warning}", file=sys.stderr)
    with tqdm(total=1, desc=path.name, unit="tile", disable=args.quiet, leave=False) as bar:
        def advance(event: api.ProgressEvent) -> None:
            bar.total = event.total
            bar.n = event.done
            bar.refresh()

        common = dict(axes=axes, channel=args.channel, device=args.device, tile=args.tile,
                      diameter=args.diameter, pixel_size_um=image.pixel_size.get("X"))
        if args.precision:
            common["precision"] = args.precision
        if task == "semantic":
            result = api.segment_semantic(
                image.data, args.model, on_progress=advance, return_probabilities=args.probabilities,
                split_instances=args.split_instances, min_size=args.min_size, z_link_iou=args.z_link_iou,
                **common,
            )
            labels = result.instances if args.split_instances else result.classes
        else:
            result = api.segment_instances(
                image.data, args.model, on_progress=advance,
                score_threshold=args.score_threshold, mask_threshold=args.mask_threshold,
                nms_iou=args.nms_iou, min_size=args.min_size, z_link_iou=args.z_link_iou,
                spacing=_spacing(image.pixel_size, output_axes(axes)),
                **common,
            )
            labels = result.labels
    written = [write_labels(args.output / f"{path.stem}.tif", labels, result.axes, image.pixel_size)]
    if task == "instances":
        written.append(write_table_csv(args.output / f"{path.stem}.csv", result.table))
    elif result.probabilities is not None:
        written.append(write_probabilities(
            args.output / f"{path.stem}_probabilities.tif", result.probabilities, "C" + result.axes
        ))
    return written, result


def input_warnings(image, axes: str, axes_given: bool = False) -> list[str]:
    """What the user should know about an input before its (possibly empty) result.

    A plane too small to hold an object, an image with no finite pixel, and axes that the
    file does not state (so they were guessed) each give one message.
    """
    import numpy as np

    warnings = []
    height, width = image.data.shape[axes.index("Y")], image.data.shape[axes.index("X")]
    if height < 8 or width < 8:
        warnings.append(f"the image is only {height} x {width} pixels: no object can be found in it.")
    if image.data.dtype.kind == "f" and not np.isfinite(image.data).any():
        warnings.append("every pixel is NaN or infinite: the result is empty.")
    if not axes_given and image.data.ndim > 2 and _axes_unstated(image.path):
        warnings.append(f"the file does not say which dimension is which; guessed {axes} for shape "
                        f"{tuple(image.data.shape)}. Pass --axes (e.g. --axes TZCYX) if that is wrong.")
    return warnings


def _axes_unstated(path: Path) -> bool:
    """True for a TIFF whose first series has dimensions tifffile could not name."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return any(letter not in "TZCYXS" for letter in tif.series[0].axes)


def write_probabilities(path: Path, probabilities, axes: str) -> Path:
    """Write float32 (K, ...) class probabilities as a TIFF (axes in its metadata) atomically."""
    import tifffile

    from ..core.io import atomic_path

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, probabilities, metadata={"axes": axes},
                         compression="zlib")
    return path


def _spacing(pixel_size: dict[str, float], axes: str) -> tuple[float, ...] | None:
    """Physical size per spatial axis (Z, Y, X present in ``axes``), or None if unknown."""
    spatial = [a for a in "ZYX" if a in axes]
    if not pixel_size or not all(a in pixel_size for a in spatial if a != "Z"):
        return None
    return tuple(pixel_size.get(a, 1.0) for a in spatial)


def write_table_csv(path: Path, table: dict) -> Path:
    """Write a table of equal-length columns to CSV atomically."""
    from ..core.io import atomic_path

    columns = list(table)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*(table[c].tolist() for c in columns)):
            writer.writerow(row)
    return path
