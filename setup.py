"""Build hook only (the metadata is in pyproject.toml): ship the top-level ``sample_data/`` folder.

The sample images live at the repository's top level (``sample_data/``, with ``SOURCES.md``),
outside the package, so ``package-data`` cannot name them. A wheel build copies them into the
package as ``napari_unet_maskrcnn/sample_data/``; an editable install has no copy and the
loaders (``napari_plugin/samples.py``) read the top-level folder of the checkout instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SAMPLE_DATA = Path(__file__).resolve().parent / "sample_data"
PACKAGE = "napari_unet_maskrcnn"


class build_py_with_sample_data(build_py):
    """``build_py`` plus a copy of ``sample_data/*`` into ``<build>/napari_unet_maskrcnn/sample_data``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable: the loaders read the checkout's sample_data/ directly
        target = Path(self.build_lib) / PACKAGE / "sample_data"
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(SAMPLE_DATA.iterdir()):
            if source.is_file():
                self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": build_py_with_sample_data})
