"""One self-describing model file: a safetensors file whose header carries the model's spec.

The spec (architecture, builder config, class names, input channels, normalisation, pixel
size, typical object diameter, provenance) is JSON in the safetensors metadata under
:data:`SPEC_KEY`; the tensors are the state dict, optionally stored as float16 to halve the
file. Nothing is unpickled: safetensors only holds tensors and strings, so a foreign file
cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPEC_KEY = "napari_unet_maskrcnn.spec"
FORMAT_VERSION = 1
ARCH_TASKS = {"unet": "semantic", "maskrcnn": "instances"}
MODEL_SUFFIX = ".safetensors"


class ModelFileError(ValueError):
    """A model file that is missing, truncated, foreign or inconsistent."""

    def __init__(self, path: str | os.PathLike, problem: str, fix: str = ""):
        self.path = str(path)
        message = f"Model file '{path}': {problem}"
        if fix:
            message += f" {fix}"
        super().__init__(message)


@dataclass
class ModelSpec:
    """Everything needed to rebuild and use a model, stored inside its file.

    Attributes:
        arch: ``"unet"`` (semantic classes per pixel) or ``"maskrcnn"`` (instances).
        config: keyword arguments of the architecture's builder (depth, width, backbone...).
        class_names: U-Net: every output class, index 0 first (usually ``"background"``).
            Mask R-CNN: the object classes, label 1 first (background is implicit).
        in_channels: channels the network takes (1 = greyscale, 3 = RGB).
        normalization: how raw intensities become network input, e.g.
            ``{"kind": "percentile", "low": 1.0, "high": 99.8}`` per channel and plane.
        pixel_size_um: pixel size (micrometres) of the training data, when known.
        object_diameter_px: median equivalent diameter (pixels) of the training objects,
            which segmentation rescales images to match (see :mod:`.object_size`); None =
            unknown (files written before it existed, or class-map training).
        name: a short human-readable name.
        provenance: training data, recipe, command line, validation metrics.
        defaults: suggested inference settings (``tile``, ``score_threshold``...).
    """

    arch: str
    config: dict[str, Any]
    class_names: list[str]
    in_channels: int
    normalization: dict[str, Any] = field(
        default_factory=lambda: {"kind": "percentile", "low": 1.0, "high": 99.8}
    )
    pixel_size_um: float | None = None
    object_diameter_px: float | None = None
    name: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def task(self) -> str:
        """``"semantic"`` or ``"instances"``."""
        return ARCH_TASKS[self.arch]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: str | os.PathLike = "<memory>") -> ModelSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelFileError(path, f"its model description is not valid JSON ({err}).") from err
        if not isinstance(data, dict):
            raise ModelFileError(path, "its model description is not a JSON object.")
        version = data.get("format_version", 0)
        if version > FORMAT_VERSION:
            raise ModelFileError(
                path,
                f"it uses model format {version}, newer than this plugin understands ({FORMAT_VERSION}).",
                "Update napari-unet-maskrcnn.",
            )
        known = set(cls.__dataclass_fields__)
        missing = {"arch", "config", "class_names", "in_channels"} - set(data)
        if missing:
            raise ModelFileError(path, f"its model description lacks {sorted(missing)}.")
        spec = cls(**{k: v for k, v in data.items() if k in known})
        if spec.arch not in ARCH_TASKS:
            raise ModelFileError(
                path, f"unknown architecture '{spec.arch}' (expected one of {sorted(ARCH_TASKS)})."
            )
        return spec


def build_network(spec: ModelSpec):
    """Build the untrained ``torch.nn.Module`` that ``spec`` describes."""
    if spec.arch == "unet":
        from .models.unet import UNet

        return UNet(in_channels=spec.in_channels, num_classes=len(spec.class_names), **spec.config)
    from .models.maskrcnn import build_maskrcnn

    return build_maskrcnn(
        in_channels=spec.in_channels, num_classes=len(spec.class_names) + 1, **spec.config
    )


def save_model(path: str | os.PathLike, network, spec: ModelSpec, half: bool = True) -> Path:
    """Write ``network``'s weights and ``spec`` to ``path`` atomically.

    The file is written to a temporary name beside ``path`` and renamed at the end, so an
    interrupted save never leaves a half-written model. Floating-point tensors are stored
    as float16 when ``half`` is True (they are restored to float32 on load).
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in network.state_dict().items():
        value = value.detach().to("cpu")
        if half and value.is_floating_point():
            value = value.to(torch.float16)
        tensors[key] = value.contiguous()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={SPEC_KEY: spec.to_json()})
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a model file is shareable
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_spec(path: str | os.PathLike) -> ModelSpec:
    """Read only the spec from a model file's header (fast: no weights are loaded)."""
    from safetensors import safe_open

    path = _check_exists(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:  # safetensors raises several error types for broken headers
        raise _unreadable(path, err) from err
    if SPEC_KEY not in metadata:
        raise ModelFileError(
            path,
            "it is a safetensors file but was not written by napari-unet-maskrcnn (no model description inside).",
            "Train or convert the model with 'unet-maskrcnn train', or choose another file.",
        )
    return ModelSpec.from_json(metadata[SPEC_KEY], path)


def load_model_file(path: str | os.PathLike, device: str = "cpu"):
    """Load a model file: returns ``(spec, network)`` with the network in eval mode on ``device``."""
    import torch
    from safetensors.torch import load_file

    spec = read_spec(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as err:
        raise _unreadable(Path(path), err) from err
    network = build_network(spec)
    expected = network.state_dict()
    state = {}
    for key, value in tensors.items():
        if key in expected and value.is_floating_point():
            value = value.to(expected[key].dtype)
        state[key] = value
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelFileError(
            path, f"its weights do not fit the architecture it describes ({str(err).splitlines()[0]})."
        ) from err
    network.eval()
    return spec, network.to(torch.device(device))


def _check_exists(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "no such file.", "Check the path, or pick a bundled model by name.")
    if path.is_dir():
        raise ModelFileError(path, "this is a folder, not a model file.")
    return path


def _unreadable(path: Path, err: Exception) -> ModelFileError:
    size = path.stat().st_size if path.exists() else 0
    return ModelFileError(
        path,
        f"not a readable model file ({size} bytes; {type(err).__name__}: {err}). It may be truncated, "
        "or not a safetensors model at all.",
        "Choose a '.safetensors' file written by napari-unet-maskrcnn.",
    )
