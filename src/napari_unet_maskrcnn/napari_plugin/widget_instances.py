"""Dock widget "Mask R-CNN instances": one id per object, with a per-object table."""

from __future__ import annotations

import pandas as pd
from magicgui.widgets import CheckBox, FloatSpinBox, SpinBox

from .. import api
from .layer_inputs import InputImage
from .layer_outputs import output_name, show_output
from .widget_segmentation_base import SegmentationWidget


def _fraction(label: str, value: float, tooltip: str) -> FloatSpinBox:
    return FloatSpinBox(label=label, value=value, min=0.0, max=1.0, step=0.05, tooltip=tooltip)


class InstanceSegmentationWidget(SegmentationWidget):
    """Mask R-CNN instance segmentation of the chosen image layer.

    Output: Labels layer "<image> · <model>" (0 = background, one id per object, linked
    across z), whose ``features`` hold the per-object table (label, class, score, area,
    bounding box, centroid) indexed by label id.
    """

    task = "instances"

    def __init__(self, napari_viewer):
        self.z_link_iou = _fraction(
            "z-linking IoU", 0.3,
            "Objects overlapping at least this much in neighbouring z-slices get the same id "
            "(0 = no linking).",
        )
        super().__init__(
            napari_viewer,
            {
                "score_threshold": _fraction(
                    "score threshold", 0.5, "Detections scoring lower are dropped."),
                "mask_threshold": _fraction(
                    "mask threshold", 0.5, "Mask probability above which a pixel is in the object."),
                "nms_iou": _fraction(
                    "NMS IoU", 0.5, "Of detections overlapping more than this, only the best is kept."),
                "min_size": SpinBox(
                    label="minimum size", value=10, min=0, max=1_000_000,
                    tooltip="Objects smaller than this many pixels are dropped."),
                "z_link_iou": self.z_link_iou,
                "tta": CheckBox(
                    text="test-time flips (4x slower)", value=False,
                    tooltip="Detect in each tile and its three mirror images and keep the objects "
                            "most views agree on: fewer false detections, four times the network time."),
            },
        )

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
