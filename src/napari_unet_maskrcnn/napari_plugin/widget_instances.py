"""Dock widget "Mask R-CNN instances": one id per object, with a per-object table."""

from __future__ import annotations

import pandas as pd

from .. import api
from ..core.settings import SEGMENT_SETTINGS
from .layer_inputs import InputImage
from .layer_outputs import output_name, show_output
from .settings_widgets import setting_field
from .widget_segmentation_base import SegmentationWidget


class InstanceSegmentationWidget(SegmentationWidget):
    """Mask R-CNN instance segmentation of the chosen image layer.

    Output: Labels layer "<image> · <model>" (0 = background, one id per object, linked
    across z), whose ``features`` hold the per-object table (label, class, score, area,
    bounding box, centroid) indexed by label id.
    """

    task = "instances"

    def __init__(self, napari_viewer):
        names = ("score_threshold", "mask_threshold", "nms_iou", "min_size", "z_link_iou", "tta")
        fields = {name: setting_field(SEGMENT_SETTINGS[name]) for name in names}  # declared in core/settings.py
        self.z_link_iou = fields["z_link_iou"]
        super().__init__(napari_viewer, fields)

    def _on_image_changed(self, _value=None) -> None:
        """Show z-linking only for images with a Z axis."""
        super()._on_image_changed(_value)
        self.z_link_iou.visible = "Z" in self._image_axes()

    def _job(self, source: InputImage):
        return api.iter_segment_instances(
            source.data, spacing=source.spacing, **self._arguments(source)
        )

    def _show(self, source: InputImage, result: api.InstanceResult) -> str:
        features = pd.DataFrame(result.table)
        features.insert(0, "index", features["label"])
        model = self.run_model
        show_output(self._viewer, "labels", result.labels, source, "instances", features=features,
                    name=output_name(source, model), model=model,
                    metadata={"object_size": result.object_size})
        return f"{len(features)} objects in '{source.name}'."
