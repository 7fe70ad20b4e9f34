"""Device and precision choice."""

import numpy as np
import pytest
import torch

from napari_unet_maskrcnn import api
from napari_unet_maskrcnn.core import device
from napari_unet_maskrcnn.core.testing import make_tiny_model_file


def test_auto_device_is_the_best_available():
    assert device.choose_device("auto").type == device.available_devices()[0]
    assert device.available_devices()[-1] == "cpu"
    assert device.choose_device("cpu").type == "cpu"


def test_unknown_or_missing_devices_are_explained():
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        device.choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available.*auto or cpu"):
            device.choose_device("cuda")


def test_precision_choice():
    assert device.inference_dtype("fp32", "cpu") is None
    assert device.inference_dtype("bf16", "cpu") is torch.bfloat16
    expected = torch.bfloat16 if device.cpu_has_native_bf16() else None
    assert device.inference_dtype("auto", "cpu") is expected
    with pytest.raises(ValueError, match="precision"):
        device.inference_dtype("fp8", "cpu")


def test_bf16_inference_agrees_with_fp32(tmp_path):
    model = make_tiny_model_file(tmp_path / "unet.safetensors")
    image = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    full = api.segment_semantic(image, model, tile=64, precision="fp32", return_probabilities=True)
    half = api.segment_semantic(image, model, tile=64, precision="bf16", return_probabilities=True)
    assert np.abs(full.probabilities - half.probabilities).max() < 0.05
