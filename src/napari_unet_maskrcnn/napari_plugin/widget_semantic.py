"""Dock widget "U-Net segmentation": one class per pixel, as a Labels layer with a legend."""

from __future__ import annotations

import numpy as np
import pandas as pd
from magicgui.widgets import Label

from .. import api
from ..core.settings import SEGMENT_SETTINGS
from .layer_inputs import InputImage
from .layer_outputs import output_name, show_output
from .settings_widgets import setting_field
from .widget_segmentation_base import SegmentationWidget

PROBABILITY_COLOURS = ("gray", "magenta", "green", "cyan", "yellow", "red", "blue")
"""Colour maps of the per-class probability layers, class 0 first (shown additively)."""


class SemanticSegmentationWidget(SegmentationWidget):
    """U-Net segmentation of the chosen image layer into the model's classes.

    Output: Labels layer "<image> · <model>" (value k = class k; ``features`` name the
    classes, shown in the status bar on hover and in the widget's legend), with
    "return probabilities" one Image layer per class "<image> · <model> · <class> probability"
    (0-1), and with "split instances" a Labels layer "<image> · <model> instances" (seeded watershed of
    the object class inside the boundary class; one id per object).
    """

    task = "semantic"

    def __init__(self, napari_viewer):
        fields = {name: setting_field(SEGMENT_SETTINGS[name])
                  for name in ("return_probabilities", "split_instances", "tta")}
        self.return_probabilities = fields["return_probabilities"]
        self.split_instances, self.tta = fields["split_instances"], fields["tta"]
        super().__init__(
            napari_viewer,
            fields,
        )
        self.legend = Label(value="")
        self.append(self.legend)

    def _clear_results(self) -> None:
        self.legend.value = ""  # the legend of the previous run's layer

    def _job(self, source: InputImage):
        return api.iter_segment_semantic(source.data, **self._arguments(source))

    def _show(self, source: InputImage, result: api.SemanticResult) -> str:
        model = self.run_model
        features = pd.DataFrame(
            {"index": np.arange(len(result.class_names)), "class_name": result.class_names}
        )
        size = {"object_size": result.object_size}
        classes = show_output(self._viewer, "labels", result.classes, source, "classes", features=features,
                              name=output_name(source, model), model=model, metadata=size)
        if result.probabilities is not None:
            for k, class_name in enumerate(result.class_names):
                show_output(
                    self._viewer, "image", result.probabilities[k], source, f"probability {class_name}",
                    name=output_name(source, model, f"· {class_name} probability"), model=model,
                    colormap=PROBABILITY_COLOURS[k % len(PROBABILITY_COLOURS)], contrast_limits=(0.0, 1.0),
                    blending="additive", metadata=size,
                )
        if result.instances is not None:
            show_output(self._viewer, "labels", result.instances, source, "U-Net instances",
                        name=output_name(source, model, "instances"), model=model, metadata=size)
        self.legend.value = class_legend(classes, result.class_names)
        return f"{len(result.class_names)} classes in '{source.name}'."


def class_legend(layer, class_names: list[str]) -> str:
    """HTML legend: a swatch in the layer's colour, the value and the name of each class."""
    rows = []
    for value, name in enumerate(class_names):
        rgba = layer.get_color(value)
        if rgba is None or rgba[3] == 0:
            rows.append(f"&#9633; {value} {name}")
            continue
        colour = "#{:02x}{:02x}{:02x}".format(*(np.round(np.asarray(rgba[:3]) * 255).astype(int)))
        rows.append(f"<span style='color:{colour}'>&#9632;</span> {value} {name}")
    return "<br>".join(rows)
