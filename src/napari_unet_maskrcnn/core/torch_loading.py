"""Loading torch beside OpenGL (napari's canvas) without letting Mesa's LLVM crash the process.

Called before any network is built (:mod:`..models` imports it first) and by the widgets, so
every path — the widgets, the API in napari's console or a script with a viewer, the tests —
loads triton safely, whichever loaded first, napari or torch.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec


def load_torch_beside_opengl() -> None:
    """Import torch (and triton, when installed) so that they cannot crash napari.

    Mesa's OpenGL drivers, which napari's canvas loads, put their LLVM into the process's
    global symbols. triton (installed with torch from PyPI on Linux, imported by
    torchvision through ``torch._dynamo``) carries its own LLVM and, loaded afterwards,
    binds to Mesa's copy and crashes the process. Loaded with ``RTLD_DEEPBIND`` it uses
    its own copy. Without napari it costs nothing: torchvision imports triton anyway.
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
