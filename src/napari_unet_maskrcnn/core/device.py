"""Choosing the torch device and thread count."""

from __future__ import annotations

import os

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISION_CHOICES = ("auto", "fp32", "bf16")
_threads_configured = False


def available_devices() -> list[str]:
    """Devices usable on this machine, best first, always ending with ``"cpu"``."""
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def choose_device(requested: str | None = "auto"):
    """Resolve ``"auto"`` (CUDA, then MPS, then CPU) or check an explicit device name.

    Raises:
        ValueError: the requested device does not exist on this machine, with the choices.
    """
    import torch

    configure_threads()
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        return torch.device(available_devices()[0])
    kind = requested.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"Unknown device '{requested}'. Choose one of {', '.join(DEVICE_CHOICES)}.")
    if kind != "cpu" and kind not in available_devices():
        raise ValueError(
            f"Device '{requested}' is not available on this machine "
            f"(available: {', '.join(available_devices())}). Use --device auto or cpu."
        )
    return torch.device(requested)


def configure_threads() -> None:
    """Let torch use the machine's cores once (``NAPARI_UNET_MASKRCNN_THREADS`` overrides).

    torch defaults to the physical core count, which is right; we only respect cgroup/affinity
    limits (``os.sched_getaffinity``) so containers with few cores do not oversubscribe.
    """
    global _threads_configured
    if _threads_configured:
        return
    import torch

    override = os.environ.get("NAPARI_UNET_MASKRCNN_THREADS")
    if override:
        threads = max(1, int(override))
    elif hasattr(os, "sched_getaffinity"):
        threads = max(1, min(torch.get_num_threads(), len(os.sched_getaffinity(0))))
    else:
        threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    _threads_configured = True


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), so autocast pays off."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def inference_dtype(precision: str, device):
    """The autocast dtype for inference on ``device``, or None for plain float32.

    ``"auto"`` uses bfloat16 where the hardware computes it natively (CUDA with bf16, CPUs
    with AVX-512 BF16 / AMX) and float32 elsewhere; ``"bf16"`` and ``"fp32"`` force it.
    """
    import torch

    precision = (precision or "auto").lower()
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"Unknown precision '{precision}'. Choose one of {', '.join(PRECISION_CHOICES)}.")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    kind = torch.device(device).type
    if kind == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if kind == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def autocast(device, dtype):
    """``torch.autocast`` for ``device`` with ``dtype``, or a no-op context when dtype is None."""
    import contextlib

    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
