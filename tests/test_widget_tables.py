"""How result tables show numbers: ids and counts whole, scores with 3 decimals, tiny densities readable."""

import numpy as np
import pandas as pd

from napari_unet_maskrcnn.napari_plugin.widget_tables import display_column


def test_columns_of_whole_numbers_have_no_decimals_and_small_values_keep_three_digits():
    frame = pd.DataFrame({
        "region_id": [0, 1, None], "region": ["background", "nucleus", "all"], "cells": [0, 36, 37],
        "region_area_px": [64577.0, 5224.0, 81920.0], "density_per_px": [0.00292, 0.0, 1.5e-5],
        "mean_cell_area_px": [np.nan, 422.778, 415.703],
    })
    shown = frame.apply(display_column)
    assert list(shown["region_id"]) == ["0", "1", ""]
    assert list(shown["region"]) == ["background", "nucleus", "all"]
    assert list(shown["cells"]) == ["0", "36", "37"]
    assert list(shown["region_area_px"]) == ["64577", "5224", "81920"]
    assert list(shown["density_per_px"]) == ["0.00292", "0.000", "0.0000150"]
    assert list(shown["mean_cell_area_px"]) == ["", "422.778", "415.703"]
    assert not any("e-" in text for text in shown.to_numpy().ravel())
