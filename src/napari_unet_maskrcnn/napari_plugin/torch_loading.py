"""Loading torch inside napari without letting Mesa's OpenGL crash it."""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec


def load_torch_beside_opengl() -> None:
    """Import torch (and triton, when installed) so that they cannot crash napari.

    Mesa's OpenGL drivers, which napari's canvas loads, put their LLVM into the process's
    global symbols. triton (installed with torch from PyPI on Linux, imported by
    torchvision) carries its own LLVM and, loaded afterwards, binds to Mesa's copy and
    crashes the process. Loaded with ``RTLD_DEEPBIND`` it uses its own copy.
    """
    import torch  # noqa: F401  (loaded normally, before the flags change)

    if not hasattr(os, "RTLD_DEEPBIND") or "triton" in sys.modules or find_spec("triton") is None:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import triton  # noqa: F401
    except ImportError:  # a broken triton: torch works without it
        pass
    finally:
        sys.setdlopenflags(flags)
