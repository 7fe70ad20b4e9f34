"""Fine-tuning the bundled nuclei Mask R-CNN on real phase-contrast cells does not make it worse.

A short version of ``scripts/finetune_phasecells.py`` (2 training sets, 1.5 minutes, 2
held-out sets). Skipped without ../shared/data/usiigaci_cells or without the bundled
``maskrcnn-nuclei`` weights.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core.training import read_name_list

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "finetune_phasecells.py"
TOLERANCE = 0.02

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def load_script():
    spec = importlib.util.spec_from_file_location("finetune_phasecells", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetuning_on_two_sets_keeps_or_improves_ap50(tmp_path, user_model_folder):
    script = load_script()
    if not (script.DATA / "images").is_dir():
        pytest.skip(f"'{script.DATA}' is absent (the Usiigaci cells of ../shared/data).")
    if not any(info.name == "maskrcnn-nuclei" and info.available for info in api.list_models()):
        pytest.skip("The bundled model 'maskrcnn-nuclei' is not installed in this copy.")
    val_names = read_name_list(script.VAL_LIST)[:2]
    train_names = [name for name in ("set01", "set02") if name not in val_names]
    output = tmp_path / "finetuned.safetensors"

    figures = script.finetune(base="maskrcnn-nuclei", train_names=train_names, val_names=val_names,
                              minutes=1.5, output=output, log=lambda line: None)

    assert output.is_file() and figures["steps"] > 0
    assert figures["ap50_after"] >= figures["ap50_before"] - TOLERANCE, figures
