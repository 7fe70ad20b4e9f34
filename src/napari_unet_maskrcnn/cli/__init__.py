"""The ``unet-maskrcnn`` command line (entry point :func:`main`): ``models``, ``segment``,
``evaluate`` and ``train``, one module per subcommand."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
