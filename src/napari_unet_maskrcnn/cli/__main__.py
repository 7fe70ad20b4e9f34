"""``python -m napari_unet_maskrcnn.cli``: the same as the ``unet-maskrcnn`` command."""

import sys

from .main import main

sys.exit(main())
