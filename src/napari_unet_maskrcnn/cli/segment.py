"""``unet-maskrcnn segment``: segment image files into label TIFFs or OME-Zarr (and per-object CSV tables).

Inputs are TIFF (read through tifffile's zarr store, tile by tile), PNG/JPEG and zarr /
OME-Zarr folders. Every input gets ``DIR/<input stem>.tif`` (uint16 labels; uint32 when
more ids are needed), or with ``--output-format zarr`` ``DIR/<input stem>.zarr`` (written
block by block, so results larger than memory work); instance models also
``DIR/<input stem>.csv`` (the per-instance table). ``--workers N`` / ``--scheduler ADDRESS``
run on dask.distributed: whole files per worker, large planes block by block. Outputs
are written atomically: a failed or interrupted run leaves no partial output.

Before any work (before the model loads) every option is checked against its range and
every output against :mod:`..core.output_paths`: an input is never an output, two inputs
with the same stem (``a.tif``, ``a.png``) are an error, and nothing that exists is replaced
without ``--overwrite`` (a zarr folder only if this plugin wrote it). Labels of an OME-Zarr
input written into its own folder add ``labels/<name>`` to it and change nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.settings import SEGMENT_SETTINGS

from .errors import EXIT_CLASH, EXIT_FAILED, EXIT_OK, EXIT_USAGE, describe_os_error

SCHEDULER_TIMEOUT_S = 10
"""Seconds to reach a --scheduler before giving up with a one-line error."""


def add_segment_parser(commands) -> None:
    """Register the ``segment`` subcommand on an ``argparse`` subparsers object."""
    seg = commands.add_parser("segment", help="segment image files into label TIFFs or OME-Zarr")
    seg.add_argument("inputs", nargs="+", metavar="INPUT", help="TIFF, PNG or JPEG images, .zarr / OME-Zarr folders")
    seg.add_argument("--model", required=True, help="model name (see 'models') or .safetensors file")
    seg.add_argument("--output", required=True, type=Path, metavar="DIR", help="output folder")
    seg.add_argument("--axes", help="input axes, e.g. YX, YXC, ZYX, TZYX, CZYX (default: from the file)")
    settings = SEGMENT_SETTINGS  # flags, defaults, ranges and help declared once (core/settings.py)
    for name in ("channel", "device", "tile", "overlap", "margin", "precision"):
        settings[name].add_argument(seg)
    for name in ("score_threshold", "mask_threshold", "nms_iou", "min_size"):
        settings[name].add_argument(seg)
    settings["diameter"].add_argument(seg, metavar="D")
    for name in ("z_link_iou", "split_instances", "return_probabilities", "tta"):
        settings[name].add_argument(seg)
    seg.add_argument("--output-format", choices=("tiff", "zarr"), default="tiff",
                     help="tiff (default), or zarr: OME-Zarr written block by block (any image size)")
    settings["block"].add_argument(seg)
    cluster = seg.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="run on a local dask cluster of N worker processes")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="run on an existing dask.distributed cluster, e.g. tcp://host:8786")
    settings["overwrite"].add_argument(seg)
    seg.add_argument("--quiet", action="store_true", help="no progress bar")


def run_segment(args: argparse.Namespace) -> int:
    """Run ``unet-maskrcnn segment``; returns the exit status (see :mod:`.errors`)."""
    from .. import api
    from ..core.output_paths import OutputClash, check_outputs

    try:
        spec = api.get_model_spec(args.model)
    except (api.ModelFileError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.output.exists() and not args.output.is_dir():
        print(f"error: --output '{args.output}' exists and is not a folder.", file=sys.stderr)
        return EXIT_USAGE
    try:
        for warning in check_options(args, spec.task):
            print(f"warning: {warning}", file=sys.stderr)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    inputs = [Path(t) for t in args.inputs]
    try:
        check_outputs(planned_outputs(inputs, spec.task, args), inputs, overwrite=args.overwrite)
    except OutputClash as err:
        print(f"error: {err} Nothing was written.", file=sys.stderr)
        return EXIT_CLASH
    created = _new_folders(args.output)
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        return _segment_all(args, spec.task)
    finally:  # failed, interrupted or nothing written: leave no empty folder behind
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def check_options(args: argparse.Namespace, task: str) -> list[str]:
    """Check every option by name and range before any work; returns warnings to print.

    Raises:
        ValueError, TypeError: an option out of its range, or one that does not apply to
            the model's task (named, with the fix).
    """
    import os

    from ..core.settings import check_settings
    from ..core.validation import check_diameter_range, check_number

    check_settings(SEGMENT_SETTINGS, vars(args), "--")
    check_diameter_range(args.diameter, args.model, "--diameter")
    cpus = os.cpu_count() or 1
    check_number("--workers", args.workers, low=1, high=cpus, integer=True,
                 unit=f"worker processes (this machine has {cpus} CPUs)")
    if args.output_format == "zarr" and (args.return_probabilities or args.split_instances):
        raise ValueError("--return-probabilities and --split-instances are written as TIFF only; "
                         "leave out --output-format zarr.")
    if task == "semantic":
        given = [f"--{n.replace('_', '-')}" for n in ("score_threshold", "mask_threshold", "nms_iou", "margin")
                 if getattr(args, n) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to Mask R-CNN models only; '{args.model}' is a U-Net. "
                             "Leave them out.")
        if args.min_size is not None and not args.split_instances:
            return ["--min-size is ignored: a U-Net's classes keep every pixel (it applies with --split-instances)."]
        return []
    given = [flag for flag, on in (("--return-probabilities", args.return_probabilities),
                                   ("--split-instances", args.split_instances),
                                   ("--overlap", args.overlap is not None)) if on]
    if given:
        raise ValueError(f"{', '.join(given)} apply to U-Net models only; '{args.model}' is a Mask R-CNN. "
                         "Leave them out.")
    return []


def planned_outputs(paths: list[Path], task: str, args: argparse.Namespace) -> list:
    """Every file or folder this run will write, one :class:`PlannedOutput` each (nothing written)."""
    from ..core.output_paths import PlannedOutput, zarr_write_target
    from ..core.zarr_io import is_ome_zarr, is_zarr_path

    outputs = []
    for path in paths:
        what = f"the labels of '{path}'"
        if args.output_format == "zarr":
            name = "classes" if task == "semantic" else "instances"
            beside = is_zarr_path(path) and is_ome_zarr(path)
            target, inside = zarr_write_target(args.output / f"{path.stem}.zarr", name, beside)
            outputs.append(PlannedOutput(target, what, "zarr", name, beside and not inside))
        else:
            outputs.append(PlannedOutput(args.output / f"{path.stem}.tif", what))
        if task == "instances":
            outputs.append(PlannedOutput(args.output / f"{path.stem}.csv", f"the object table of '{path}'"))
        elif args.return_probabilities:
            outputs.append(PlannedOutput(args.output / f"{path.stem}_probabilities.tif",
                                         f"the probabilities of '{path}'"))
    return outputs


def _new_folders(folder: Path) -> list[Path]:
    """The folders that creating ``folder`` would add, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _segment_all(args: argparse.Namespace, task: str) -> int:
    from ..core.object_size import describe_object_size

    failures = 0
    with _cluster(args) as client:
        for text, outcome in _segment_files([Path(t) for t in args.inputs], task, args, client):
            if isinstance(outcome, Exception):
                failures += 1
                message = describe_os_error(outcome) if isinstance(outcome, OSError) else str(outcome)
                print(f"error: {text}: {message}", file=sys.stderr)
            elif not args.quiet:
                written, result = outcome
                if result.object_size:
                    print(f"{text}: {describe_object_size(result.object_size)}", file=sys.stderr)
                print(f"{text} -> {', '.join(str(p) for p in written)}", file=sys.stderr)
    if failures:
        print(f"{failures} of {len(args.inputs)} inputs failed; their outputs were not written.",
              file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


_INPUT_ERRORS = (ValueError, OSError)


def _cluster(args):
    """Context manager: a dask.distributed Client for --workers / --scheduler, else None."""
    from contextlib import nullcontext

    if args.scheduler:
        return _scheduler_client(args.scheduler)
    if args.workers:
        from ..core.executor import local_client

        return local_client(args.workers)
    return nullcontext(None)


def _scheduler_client(address: str):
    """A Client of the cluster at ``address``; ValueError naming it if unreachable in SCHEDULER_TIMEOUT_S."""
    from dask.distributed import Client

    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as err:
        raise ValueError(f"cannot reach the dask scheduler at '{address}' within {SCHEDULER_TIMEOUT_S} s "
                      f"({type(err).__name__}); check the address (e.g. tcp://host:8786) and that the "
                      "scheduler runs, or leave out --scheduler.") from None


def _segment_files(paths: list[Path], task: str, args, client):
    """Yield ``(path, written files or the exception)`` for every input.

    On a cluster, TIFF outputs of images whose planes fit in one block are computed one
    file per task on the workers; larger images and zarr outputs go block by block.
    """
    from .. import api

    whole_files, by_blocks = [], []
    for path in paths:
        if client is None:
            by_blocks.append(path)
            continue
        try:
            image, axes = _read(path, args)
        except _INPUT_ERRORS as err:
            yield path, err
            continue
        small = image.data.shape[axes.index("Y")] * image.data.shape[axes.index("X")] <= args.block**2
        (whole_files if small and args.output_format == "tiff" else by_blocks).append(path)
    if whole_files:
        from tqdm import tqdm

        from ..core.executor import run_tasks

        tasks = run_tasks(_compute_file, [(path, task, args) for path in whole_files], client, key="file")
        with tqdm(total=len(whole_files), unit="file", disable=args.quiet, leave=False) as bar:
            for index, (computed, error) in tasks:
                bar.update()
                path = whole_files[index]
                try:
                    if error is not None:
                        raise error
                    yield path, _write_outputs(path, task, args, *computed)
                except (*_INPUT_ERRORS, api.ModelFileError) as err:
                    yield path, err
    for path in by_blocks:
        try:
            yield path, _segment_one(path, task, args, client)
        except (*_INPUT_ERRORS, api.ModelFileError) as err:
            yield path, err


def _read(path: Path, args):
    """``(ImageData with lazy TIFF/zarr pixels, axes)``."""
    from ..core.axes import validate_axes
    from ..core.io import read_image

    image = read_image(path, lazy=True)
    return image, validate_axes(args.axes, image.data.shape) if args.axes else image.axes


def _compute_file(path: Path, task: str, args):
    """Task (on a worker): segment one file in memory; returns ``((result, labels, pixel size), error)``.

    Errors a user can act on come back as values, so one bad file does not stop the others.
    """
    from .. import api

    try:
        image, axes = _read(path, args)
        result, labels = _run_api(image, axes, task, args, None, None, None)
    except (*_INPUT_ERRORS, api.ModelFileError) as err:
        return None, err
    return (result, labels, image.pixel_size), None


def _segment_one(path: Path, task: str, args, client=None):
    """``(written files, result)`` of one input, segmented here (or by blocks on ``client``)."""
    from tqdm import tqdm

    from .. import api
    from ..core.axes import output_axes, to_canonical
    from ..core.blockwise import open_output
    from ..core.output_paths import ZarrOutput
    from ..core.zarr_io import is_ome_zarr

    image, axes = _read(path, args)
    for warning in input_warnings(image, axes, axes_given=bool(args.axes)):
        print(f"warning: {path}: {warning}", file=sys.stderr)
    with tqdm(total=1, desc=path.name, unit="tile", disable=args.quiet, leave=False) as bar:
        def advance(event: api.ProgressEvent) -> None:
            bar.total = event.total
            bar.n = event.done
            bar.unit = event.stage
            bar.refresh()

        if args.output_format == "zarr":
            shape = to_canonical(image.data, axes).shape[:4]
            target = args.output / f"{path.stem}.zarr"
            dtype = "uint8" if task == "semantic" else "uint32"
            name = "classes" if task == "semantic" else "instances"
            with open_output(ZarrOutput(target, args.overwrite), shape, output_axes(axes), dtype,
                             beside_image=is_ome_zarr(path), pixel_size=image.pixel_size, name=name) as writer:
                result, _ = _run_api(image, axes, task, args, advance, client, writer)
            written = [target]
            if task == "instances":
                from ..core.io import write_table_csv

                written.append(write_table_csv(args.output / f"{path.stem}.csv", result.table))
            return written, result
        result, labels = _run_api(image, axes, task, args, advance, client, None)
    return _write_outputs(path, task, args, result, labels, image.pixel_size)


def _run_api(image, axes: str, task: str, args, advance, client, out):
    """``(result, labels to write)`` of the API call the command line options ask for."""
    from .. import api
    from ..core.axes import output_axes

    common = dict(axes=axes, channel=args.channel, device=args.device, tile=args.tile, tta=args.tta,
                  precision=args.precision, diameter=args.diameter, pixel_size_um=image.pixel_size.get("X"))
    if client is not None or out is not None:
        common.update(client=client, out=out, block=args.block)
    if task == "semantic":
        result = api.segment_semantic(
            image.data, args.model, on_progress=advance, overlap=args.overlap,
            return_probabilities=args.return_probabilities,
            split_instances=args.split_instances, min_size=args.min_size, z_link_iou=args.z_link_iou,
            **common,
        )
        return result, result.instances if args.split_instances else result.classes
    result = api.segment_instances(
        image.data, args.model, on_progress=advance, margin=args.margin,
        score_threshold=args.score_threshold, mask_threshold=args.mask_threshold,
        nms_iou=args.nms_iou, min_size=args.min_size, z_link_iou=args.z_link_iou,
        spacing=_spacing(image.pixel_size, output_axes(axes)),
        **common,
    )
    return result, result.labels


def _write_outputs(path: Path, task: str, args, result, labels, pixel_size):
    """Write the label TIFF, and the table CSV or probabilities TIFF, of one input: ``(written, result)``."""
    from ..core.io import write_labels, write_table_csv

    written = [write_labels(args.output / f"{path.stem}.tif", labels, result.axes, pixel_size)]
    if task == "instances":
        written.append(write_table_csv(args.output / f"{path.stem}.csv", result.table))
    elif result.probabilities is not None:
        written.append(write_probabilities(
            args.output / f"{path.stem}_probabilities.tif", result.probabilities, "C" + result.axes
        ))
    return written, result


def input_warnings(image, axes: str, axes_given: bool = False) -> list[str]:
    """What the user should know about an input before its (possibly empty) result.

    :func:`..core.validation.content_warnings` (tiny planes, no finite pixel, one value
    everywhere), and axes that the file does not state (so they were guessed).
    """
    from ..core.validation import content_warnings

    warnings = content_warnings(image.data, axes)
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
