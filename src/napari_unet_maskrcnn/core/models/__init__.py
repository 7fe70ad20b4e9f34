"""The networks: U-Net (:mod:`.unet`) and Mask R-CNN (:mod:`.maskrcnn`)."""

from ..torch_loading import load_torch_beside_opengl

load_torch_beside_opengl()  # before torchvision imports triton (see torch_loading)
