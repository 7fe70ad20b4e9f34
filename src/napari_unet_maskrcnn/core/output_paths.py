"""Where a run may write: one rule for every output (CLI, API ``out=``, napari writer, training).

**A run never replaces or deletes a file or folder that it did not create in that run, unless
the caller asked for it** (``--overwrite`` on the command line, ``overwrite=True`` in Python).
:func:`check_outputs` applies the rule to everything a run will write, *before* any work starts
(before a model is loaded), and raises :class:`OutputClash` naming the path and the fix:

- an output that is an input, or a folder holding an input, is refused, even with overwrite;
- two outputs of one run with the same path are refused (e.g. inputs ``a.tif`` and ``a.png``
  both give ``a.tif``): rename one input, or segment them into different folders;
- an output under a path that is a file, or in a folder that cannot be written, is refused;
- an existing output file is replaced only with overwrite; a folder where a file goes, never;
- an existing zarr folder is replaced (with overwrite) only when this project wrote it: its
  root group (or its ``labels/<name>`` group) carries the :data:`RESULT_ATTRIBUTE` attribute.
  A foreign folder is never replaced, whatever the options;
- labels of an OME-Zarr image written into that image's own folder add ``labels/<name>`` and
  touch nothing else (:func:`zarr_write_target`).

:class:`ZarrOutput` carries an ``out=`` path with its overwrite choice down to
:func:`.zarr_io.labels_zarr`, which checks again when it publishes the result.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

RESULT_ATTRIBUTE = "napari_unet_maskrcnn"
"""zarr attribute (a dict with ``result`` and ``version``) on every zarr result this project writes."""

OVERWRITE_HINT = "Pass --overwrite (overwrite=True in Python) to replace it, or choose another output"


class OutputClash(ValueError):
    """A planned output that would replace or delete something the run did not create.

    Attributes:
        path: the output path at fault.
    """

    def __init__(self, path: str | os.PathLike, problem: str, fix: str):
        self.path = str(path)
        super().__init__(f"Output '{path}': {problem}. {fix}.")


@dataclass(frozen=True)
class PlannedOutput:
    """One path a run will write.

    Attributes:
        path: the file, or for ``kind="zarr"`` the ``.zarr`` folder.
        what: what it holds, for messages (e.g. ``"labels of 'a.tif'"``).
        kind: ``"file"`` or ``"zarr"``.
        labels_name: zarr only: the label image's name (``labels/<name>`` beside an OME-Zarr image).
        beside_image: zarr only: the labels go under ``labels/<name>`` (the input was OME-Zarr).
    """

    path: Path
    what: str
    kind: str = "file"
    labels_name: str = "labels"
    beside_image: bool = False


@dataclass(frozen=True)
class ZarrOutput:
    """An ``out=`` folder with the caller's overwrite choice; usable wherever a path is (``os.fspath``)."""

    path: Path
    overwrite: bool = False

    def __fspath__(self) -> str:
        return str(self.path)


def check_outputs(
    outputs: Sequence[PlannedOutput],
    inputs: Iterable[str | os.PathLike] = (),
    *,
    overwrite: bool = False,
) -> None:
    """Apply the rule of this module to every planned output of one run; nothing is written.

    Args:
        outputs: everything the run will write.
        inputs: the files and folders the run reads; none may be an output or inside one.
        overwrite: the user asked to replace existing outputs (results of this project only,
            for zarr folders).

    Raises:
        OutputClash: the first output that breaks the rule, with the path and the fix.
    """
    real_inputs = {_real(p): Path(p) for p in inputs}
    seen: dict[str, PlannedOutput] = {}
    for output in outputs:
        real = _real(output.path)
        if real in seen:
            raise OutputClash(
                output.path, f"{output.what} and {seen[real].what} would both be written here",
                "Rename one of the inputs, or segment them into different output folders",
            )
        seen[real] = output
        check_not_input(output.path, real_inputs)
        check_parent(output.path)
        if output.kind == "zarr":
            check_zarr_output(output.path, name=output.labels_name, beside_image=output.beside_image,
                              overwrite=overwrite)
        else:
            check_file_output(output.path, overwrite=overwrite)


def check_not_input(path: str | os.PathLike, inputs: dict[str, Path] | Iterable[str | os.PathLike]) -> None:
    """Refuse an output that is an input or a folder holding one (OutputClash)."""
    if not isinstance(inputs, dict):
        inputs = {_real(p): Path(p) for p in inputs}
    real = _real(path)
    for real_input, given in inputs.items():
        if real == real_input:
            raise OutputClash(path, f"it is also an input ('{given}'), which would be replaced",
                              "Choose another output folder or file name")
        if real_input.startswith(real.rstrip(os.sep) + os.sep):
            raise OutputClash(path, f"it holds an input ('{given}'), which replacing it would delete",
                              "Choose another output folder or file name")


def check_parent(path: str | os.PathLike) -> None:
    """Refuse an output whose nearest existing ancestor is a file, or a folder that cannot be written."""
    path = Path(os.path.abspath(path))
    for ancestor in path.parents:
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                raise OutputClash(path, f"'{ancestor}' is a file, so nothing can be written under it",
                                  "Choose an output in a folder")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise OutputClash(path, f"the folder '{ancestor}' cannot be written (permission denied or "
                                  "a read-only file system)", "Choose an output folder you may write to")
            return


def check_file_output(path: str | os.PathLike, *, overwrite: bool) -> None:
    """Refuse an existing file unless ``overwrite``; an existing folder always (OutputClash)."""
    path = Path(path)
    if path.is_dir():
        raise OutputClash(path, "a folder of that name exists; a file cannot replace it",
                          "Choose another output name, or move the folder away")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputClash(path, "the file exists already and this run did not create it", OVERWRITE_HINT)


def zarr_write_target(path: str | os.PathLike, name: str, beside_image: bool) -> tuple[Path, bool]:
    """``(folder to create or replace, inside an image)`` for labels written at ``path``.

    Beside an existing OME-Zarr image (``beside_image`` and ``path`` is that image) the labels
    go to ``path/labels/<name>`` and nothing else of the image is touched; otherwise the
    whole ``path`` folder is the result.
    """
    from .zarr_io import is_ome_zarr

    path = Path(path)
    if beside_image and path.is_dir() and is_ome_zarr(path) and not is_our_result(path):
        return path / "labels" / name, True
    return path, False


def check_zarr_output(path: str | os.PathLike, *, name: str = "labels", beside_image: bool = False,
                      overwrite: bool = False) -> None:
    """Refuse to replace a zarr result unless it is this project's and ``overwrite`` (OutputClash).

    A file, or a folder this project did not write, is never replaced.
    """
    target, inside = zarr_write_target(path, name, beside_image)
    if not (target.exists() or target.is_symlink()):
        return
    if inside:
        where = f"the image '{path}' has labels named '{name}' already"
    else:
        where = "it exists already"
    if not target.is_dir() or not is_our_result(target):
        raise OutputClash(target, f"{where}, not written by napari-unet-maskrcnn, so never replaced",
                          "Choose another output name or folder")
    if not overwrite:
        raise OutputClash(target, f"{where} (an earlier result of this plugin)", OVERWRITE_HINT)


def check_label_file_target(path: str | os.PathLike) -> None:
    """The napari writer's rule: it may replace a label image (napari's Save dialog asked the user)
    but never an image that is not one (a raw image, an RGB picture), a folder, or an input
    under a file (OutputClash)."""
    path = Path(path)
    check_parent(path)
    if path.is_dir():
        raise OutputClash(path, "it is a folder", "Choose a file name ending in .tif")
    if path.exists() and not _is_label_file(path):
        raise OutputClash(path, "the file there is an image, not a label image, and saving would replace it",
                          "Choose another file name for the labels")


def result_marker() -> dict:
    """The value of :data:`RESULT_ATTRIBUTE` written on zarr results."""
    from .version import package_version

    return {"result": "labels", "version": package_version()}


def is_our_result(path: str | os.PathLike) -> bool:
    """Whether the zarr group at ``path`` carries this project's :data:`RESULT_ATTRIBUTE`."""
    import zarr

    try:
        node = zarr.open(Path(path), mode="r")
    except Exception:  # not zarr, unreadable: not ours
        return False
    attrs = dict(node.attrs)
    return RESULT_ATTRIBUTE in attrs or RESULT_ATTRIBUTE in (attrs.get("ome") or {})


def _is_label_file(path: Path) -> bool:
    """An integer, single-channel image file (what the writer writes); unreadable files are not."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return series.dtype.kind in "bui" and "S" not in series.axes and "C" not in series.axes
    except Exception:
        return False


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(path))
