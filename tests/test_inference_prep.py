"""Inference-only preparation at load: folded batch norm gives the same outputs as the model file."""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_unet_maskrcnn.core import registry
from napari_unet_maskrcnn.core.inference import fold_batch_norms, prepare_for_inference
from napari_unet_maskrcnn.core.inputs import prepare_plane
from napari_unet_maskrcnn.core.instances import predict_instances_plane
from napari_unet_maskrcnn.core.model_file import load_model_file
from napari_unet_maskrcnn.core.models.maskrcnn import detect
from napari_unet_maskrcnn.core.semantic import predict_semantic_plane
from napari_unet_maskrcnn.core.progress import drain
from napari_unet_maskrcnn.core.testing import make_tiny_model_file
from torchvision.ops.misc import FrozenBatchNorm2d

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIRS = (REPO / "sample_data", REPO / "src" / "napari_unet_maskrcnn" / "napari_plugin" / "sample_data")


def _sample(name: str) -> np.ndarray:
    import tifffile

    for folder in SAMPLE_DIRS:
        if (folder / name).is_file():
            return tifffile.imread(folder / name)
    pytest.skip(f"sample image {name} not found")


def _perturb_norms(network: torch.nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics and affine terms (a fresh model's are 0/1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)


def _count(network, kind) -> int:
    return sum(isinstance(module, kind) for module in network.modules())


def test_tiny_unet_probabilities_unchanged_by_folding(tmp_path):
    _, network = load_model_file(make_tiny_model_file(tmp_path / "u.safetensors", "unet"))
    _perturb_norms(network)
    network.eval()
    reference = copy.deepcopy(network)
    prepared = prepare_for_inference(network, "cpu")
    assert _count(reference, torch.nn.BatchNorm2d) == 10 and _count(prepared, torch.nn.BatchNorm2d) == 0
    assert not any(p.requires_grad for p in prepared.parameters())
    image = np.random.default_rng(0).random((1, 70, 90), dtype=np.float32)
    source = prepare_plane(image[0], 1)
    before = drain(predict_semantic_plane(source, reference, tile=48, overlap=8, return_probabilities=True))
    after = drain(predict_semantic_plane(source, prepared, tile=48, overlap=8, return_probabilities=True))
    np.testing.assert_allclose(after[1], before[1], atol=1e-5)
    assert (after[0] == before[0]).mean() > 0.999


def test_tiny_maskrcnn_detections_unchanged_by_folding(tmp_path):
    _, network = load_model_file(make_tiny_model_file(tmp_path / "m.safetensors", "maskrcnn"))
    _perturb_norms(network, seed=1)
    network.eval()
    reference = copy.deepcopy(network)
    prepared = prepare_for_inference(network, "cpu")
    assert _count(reference, torch.nn.BatchNorm2d) == 20 and _count(prepared, torch.nn.BatchNorm2d) == 0
    image = np.random.default_rng(1).random((1, 96, 128), dtype=np.float32)
    before = detect(reference, image, score_threshold=0.0)
    after = detect(prepared, image, score_threshold=0.0)
    assert len(before["boxes"]) > 0
    # a near-tied score may swap two detections' order: compare as sets of boxes, sorted
    order_b, order_a = np.lexsort(before["boxes"].T), np.lexsort(after["boxes"].T)
    np.testing.assert_allclose(after["boxes"][order_a], before["boxes"][order_b], atol=1e-3)
    np.testing.assert_allclose(after["scores"][order_a], before["scores"][order_b], atol=1e-4)
    np.testing.assert_allclose(after["masks"][order_a], before["masks"][order_b], atol=1e-4)


def test_frozen_batch_norm_is_folded_too():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    norm = FrozenBatchNorm2d(4)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, 1.0, 2.0, 1.5]))
        norm.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        norm.running_mean.copy_(torch.tensor([0.2, 0.0, -0.1, 0.4]))
        norm.running_var.copy_(torch.tensor([1.5, 0.7, 1.0, 2.0]))
    network = torch.nn.Sequential(conv, norm, torch.nn.ReLU()).eval()
    x = torch.randn(2, 3, 9, 11)
    expected = network(x)
    assert fold_batch_norms(network) == 1
    assert isinstance(network[1], torch.nn.Identity) and network[0].bias is not None
    torch.testing.assert_close(network(x), expected, atol=1e-5, rtol=1e-5)


def test_norms_not_after_a_convolution_or_training_are_left_alone():
    network = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.BatchNorm2d(3), torch.nn.Conv2d(3, 3, 1),
                                  torch.nn.BatchNorm2d(3))
    network.train()
    assert fold_batch_norms(network) == 0  # training mode: statistics still change
    network.eval()
    assert fold_batch_norms(network) == 1
    assert isinstance(network[1], torch.nn.BatchNorm2d) and isinstance(network[3], torch.nn.Identity)


def test_bundled_maskrcnn_labels_unchanged_on_a_sample_image():
    if not (registry.BUNDLED_DIR / "maskrcnn-nuclei.safetensors").is_file():
        pytest.skip("maskrcnn-nuclei not installed")
    image = _sample("nuclei_fluorescence.tif")
    spec, reference = load_model_file(registry.resolve_model("maskrcnn-nuclei"))
    reference.eval()
    prepared = prepare_for_inference(copy.deepcopy(reference), "cpu")
    source = prepare_plane(image, spec.in_channels, None, spec.normalization)
    results = [
        drain(predict_instances_plane(source, partial(detect, network, score_threshold=0.75), tile=512, margin=64))
        for network in (reference, prepared)
    ]
    assert results[0].labels.max() > 10
    assert results[1].labels.max() == results[0].labels.max()
    assert (results[1].labels == results[0].labels).mean() > 0.9999
    np.testing.assert_allclose(results[1].scores, results[0].scores, atol=1e-4)


def test_registry_loads_prepared_networks(tmp_path):
    path = make_tiny_model_file(tmp_path / "r.safetensors", "unet")
    _, network = registry.load_model(path, "cpu")
    assert _count(network, torch.nn.BatchNorm2d) == 0
    assert not network.training


def test_registry_gives_a_maskrcnn_its_object_diameter(tmp_path):
    path = make_tiny_model_file(tmp_path / "d.safetensors", "maskrcnn", object_diameter_px=12.5)
    _, network = registry.load_model(path, "cpu")
    assert network.object_diameter_px == 12.5
