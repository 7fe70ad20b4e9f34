"""``unet-maskrcnn measure``: per-object measurements and counts per region class into CSV tables.

    unet-maskrcnn measure --instances LABELS.tif [--image IMAGE] [--regions CLASSES.tif]
                  [--class-names background,gland] --output OBJECTS.csv [--summary REGIONS.csv]

The objects table gets one row per object (size, shape, intensities of ``--image``, and the
region class of each object with ``--regions``); the summary, one row per region class and
"all" (cells, region area, cells per mm² or per pixel, mean cell size), is written next to it
(``OBJECTS_regions.csv`` unless ``--summary``) and printed. Sizes are in µm when the labels
file states its pixel size. Both files are written atomically; neither may be an input or
each other, and an existing file is replaced only with ``--overwrite`` (checked before reading).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EXIT_CLASH, EXIT_OK, EXIT_USAGE


def add_measure_parser(commands) -> None:
    """Register the ``measure`` subcommand on an ``argparse`` subparsers object."""
    parser = commands.add_parser(
        "measure", help="measure objects of a label image; count them per region class (CSV)")
    parser.add_argument("--instances", required=True, type=Path, metavar="LABELS",
                        help="instance label image (TIFF/PNG), e.g. the output of 'segment' with a Mask R-CNN")
    parser.add_argument("--image", type=Path, help="image whose intensities are measured in each object")
    parser.add_argument("--regions", type=Path, metavar="CLASSES",
                        help="class map of the same size, e.g. the output of 'segment' with a U-Net")
    parser.add_argument("--class-names", metavar="NAMES",
                        help="comma-separated names of the region classes, class 0 first "
                             "(e.g. background,gland; see 'models')")
    parser.add_argument("--output", required=True, type=Path, metavar="OBJECTS.csv",
                        help="per-object table")
    parser.add_argument("--summary", type=Path, metavar="REGIONS.csv",
                        help="per-region table (default: OBJECTS_regions.csv)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output tables if they exist")


def run_measure(args: argparse.Namespace) -> int:
    """Run ``unet-maskrcnn measure``; returns the exit status."""
    from .. import api
    from ..core.io import ImageReadError, read_image
    from ..core.output_paths import OutputClash, PlannedOutput, check_outputs
    from ..core.io import write_table_csv

    summary_path = args.summary or args.output.with_name(f"{args.output.stem}_regions.csv")
    try:
        check_outputs([PlannedOutput(args.output, "the objects table (--output)"),
                       PlannedOutput(summary_path, "the region summary (--summary)")],
                      [p for p in (args.instances, args.image, args.regions) if p is not None],
                      overwrite=args.overwrite)
    except OutputClash as err:
        print(f"error: {err} Nothing was written.", file=sys.stderr)
        return EXIT_CLASH
    try:
        labels_file = read_image(args.instances)
        labels = _single_plane(labels_file, args.instances, "--instances")
        image = read_image(args.image).data if args.image else None
        regions = _single_plane(read_image(args.regions), args.regions, "--regions") if args.regions else None
        class_names = args.class_names.split(",") if args.class_names else None
        spacing = _spacing(labels_file.pixel_size, labels.ndim)
        measured = api.measure_objects(labels, image, regions=regions, class_names=class_names,
                                       spacing=spacing)
    except (ImageReadError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    write_table_csv(args.output, measured.objects)
    write_table_csv(summary_path, {k: _column(v) for k, v in measured.summary.items()})
    _print_summary(measured.summary)
    print(f"{len(measured.objects['label'])} objects -> {args.output}, {summary_path}", file=sys.stderr)
    return EXIT_OK


def _single_plane(image, path: Path, option: str):
    """The label data of a 2D or 3D label file; ValueError naming ``option`` otherwise."""
    import numpy as np

    from ..core.validation import check_label_values

    data = np.asarray(image.data)
    if data.ndim not in (2, 3) or "C" in image.axes or "T" in image.axes:
        raise ValueError(f"{option} '{path}' has axes {image.axes} and shape {data.shape}: "
                         "expected a label image, 2D (YX) or a z-stack (ZYX).")
    return check_label_values(data, f"{option} '{path}'")


def _spacing(pixel_size: dict[str, float], ndim: int) -> tuple[float, ...] | None:
    """Pixel size per axis of the labels (µm), or None when the file does not state X and Y."""
    if "X" not in pixel_size or "Y" not in pixel_size:
        return None
    axes = "ZYX"[-ndim:]
    return tuple(pixel_size.get(axis, 1.0) for axis in axes)


def _column(values: list):
    import numpy as np

    return np.asarray(["" if v is None else v for v in values], dtype=object)


def _print_summary(summary: dict[str, list]) -> None:
    columns = [c for c in summary if c != "region_id"]
    rows = [[_cell(summary[c][i]) for c in columns] for i in range(len(summary["region"]))]
    widths = [max(len(c), *(len(r[k]) for r in rows)) for k, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
