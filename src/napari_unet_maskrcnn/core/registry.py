"""Where models come from: bundled names, the user's model folder, and files given by path.

Bundled models ship inside the package (``bundled_models/<name>.safetensors``). The user's
folder (``$NAPARI_UNET_MASKRCNN_MODELS`` or ``~/.napari-unet-maskrcnn/models``) holds models
trained or added by the user; it is re-read on every listing so new files appear at once.
Loaded networks are cached on (file, modification time, device), so a model is built once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .model_file import MODEL_SUFFIX, ModelFileError, ModelSpec, load_model_file, read_spec

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled_models"


@dataclass(frozen=True)
class BundledEntry:
    task: str
    class_names: tuple[str, ...]
    description: str


BUNDLED: dict[str, BundledEntry] = {
    "maskrcnn-nuclei": BundledEntry(
        "instances", ("nucleus",), "Nuclei (fluorescence and stained tissue), DSB2018"
    ),
    "unet-nuclei": BundledEntry(
        "semantic", ("background", "nucleus", "boundary"), "Nuclei classes, DSB2018"
    ),
    "maskrcnn-phasecells": BundledEntry(
        "instances", ("cell",), "Whole cells in phase contrast, Usiigaci"
    ),
    "unet-phasecells": BundledEntry(
        "semantic", ("background", "cell", "boundary"), "Cell classes in phase contrast, Usiigaci"
    ),
    "unet-tissue": BundledEntry(
        "semantic", ("background", "gland"), "Gland epithelium vs stroma/lumen in H&E colorectal biopsies, EBHI-Seg"
    ),
}


@dataclass(frozen=True)
class ModelInfo:
    """A model the user can choose.

    Attributes:
        name: bundled name, or the file's stem for user models.
        task: ``"semantic"`` or ``"instances"``.
        class_names: classes as stored in the model (see ModelSpec.class_names).
        path: the model file, or None when a bundled model's weights are not installed.
        bundled: True for the reserved names of :data:`BUNDLED`.
        available: True when the weights are present and can be run.
        description: one line for lists and tooltips.
    """

    name: str
    task: str
    class_names: tuple[str, ...]
    path: Path | None
    bundled: bool
    available: bool
    description: str = ""


_registered: dict[str, Path] = {}
_lock = threading.Lock()


def user_model_dir() -> Path:
    """The folder scanned for the user's own models (may not exist yet)."""
    override = os.environ.get("NAPARI_UNET_MASKRCNN_MODELS")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".napari-unet-maskrcnn" / "models"


def _info_from_file(path: Path, name: str, bundled: bool, description: str = "") -> ModelInfo:
    spec = read_spec(path)
    return ModelInfo(
        name=name,
        task=spec.task,
        class_names=tuple(spec.class_names),
        path=path,
        bundled=bundled,
        available=True,
        description=description or spec.provenance.get("description", "") or spec.name,
    )


def list_models(include_unavailable: bool = True) -> list[ModelInfo]:
    """Bundled models first, then models in the user folder, then files registered this session.

    Unreadable files in the user folder are skipped (they are reported when chosen by path).
    """
    infos: list[ModelInfo] = []
    for name, entry in BUNDLED.items():
        path = BUNDLED_DIR / f"{name}{MODEL_SUFFIX}"
        if path.is_file():
            infos.append(_info_from_file(path, name, True, entry.description))
        elif include_unavailable:
            infos.append(
                ModelInfo(name, entry.task, entry.class_names, None, True, False, entry.description)
            )
    seen = {info.name for info in infos}
    candidates = sorted(user_model_dir().glob(f"*{MODEL_SUFFIX}")) if user_model_dir().is_dir() else []
    with _lock:
        candidates += [p for p in _registered.values() if p not in candidates]
    for path in candidates:
        name = path.stem if path.stem not in seen else str(path)
        try:
            infos.append(_info_from_file(path, name, False))
        except ModelFileError:
            continue
        seen.add(name)
    return infos


def register_model_file(path: str | os.PathLike) -> ModelInfo:
    """Add a model file for this session (it then appears in :func:`list_models`).

    Raises:
        ModelFileError: the file is missing, truncated or not a model of this plugin.
    """
    path = Path(path).expanduser().resolve()
    read_spec(path)
    with _lock:
        _registered[str(path)] = path
    return next(info for info in list_models() if info.path == path)


def resolve_model(model: str | os.PathLike) -> Path:
    """Turn a bundled/user model name or a file path into an existing model file path.

    Raises:
        ModelFileError: a path that does not exist, or a bundled model not installed.
        ValueError: an unknown name, listing the names that exist.
    """
    text = str(model)
    if text in BUNDLED:
        path = BUNDLED_DIR / f"{text}{MODEL_SUFFIX}"
        if not path.is_file():
            raise ModelFileError(
                path,
                f"the bundled model '{text}' is not installed in this copy of napari-unet-maskrcnn.",
                "Reinstall the package, or choose a model file with --model PATH.",
            )
        return path
    for info in list_models(include_unavailable=False):
        if info.name == text and info.path is not None:
            return info.path
    path = Path(text).expanduser()
    if path.suffix or os.sep in text or path.exists():
        if not path.exists():
            raise ModelFileError(path, "no such file.", "Check the path, or give a model name.")
        return path.resolve()
    names = ", ".join(info.name for info in list_models(include_unavailable=False)) or "none installed"
    raise ValueError(
        f"Unknown model '{text}'. Available models: {names}. "
        "Give a model name from 'unet-maskrcnn models' or the path of a .safetensors model file."
    )


_cache: OrderedDict[tuple, tuple[ModelSpec, object]] = OrderedDict()
_CACHE_SIZE = 4


def load_model(model: str | os.PathLike, device) -> tuple[ModelSpec, object]:
    """Load (or fetch from the cache) ``(spec, network)`` for ``model`` on ``device``.

    The cache key includes the file's modification time, so a retrained file is reloaded.
    The network is prepared for inference only (:func:`.inference.prepare_for_inference`:
    batch norm folded into the convolutions, no gradients, channels-last on the CPU), so it
    must not be trained: training loads model files with :func:`.model_file.load_model_file`.
    """
    from .inference import prepare_for_inference

    path = resolve_model(model)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, str(device))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    spec, network = load_model_file(path, device=str(device))
    network = prepare_for_inference(network, device)
    if spec.arch == "maskrcnn":  # detect() sizes its proposal counts to the expected object count
        network.object_diameter_px = spec.object_diameter_px
    loaded = (spec, network)
    with _lock:
        _cache[key] = loaded
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def clear_cache() -> None:
    """Forget every loaded network (frees memory)."""
    with _lock:
        _cache.clear()
