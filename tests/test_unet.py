"""UNet: shapes for any image size, gradients, size of the default network, config round trip."""

import pytest
import torch

from napari_unet_maskrcnn.core.model_file import ModelSpec, build_network
from napari_unet_maskrcnn.core.models.unet import UNet


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("height, width", [(37, 53), (1, 5), (1, 1), (2, 3), (16, 32), (5, 70)])
def test_logits_have_the_input_size_for_any_shape(in_channels, height, width):
    network = UNet(in_channels, 4, depth=2, base_width=8).eval()
    with torch.inference_mode():
        logits = network(torch.rand(2, in_channels, height, width))
    assert logits.shape == (2, 4, height, width)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


def test_gradients_reach_every_parameter():
    network = UNet(3, 2, depth=2, base_width=8).train()
    logits = network(torch.rand(2, 3, 21, 30))
    target = torch.randint(0, 2, (2, 21, 30))
    torch.nn.functional.cross_entropy(logits, target).backward()
    for name, parameter in network.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert network.encoders[0][0].weight.grad.abs().sum() > 0


def test_default_network_fits_the_model_file_budget():
    network = UNet(1, 3)
    parameters = sum(p.numel() for p in network.parameters())
    assert 7_000_000 <= parameters <= 8_000_000
    assert parameters * 2 <= 40 * 1024**2  # stored as float16


def test_built_from_a_model_spec_config():
    spec = ModelSpec(
        arch="unet",
        config={"depth": 3, "base_width": 4},
        class_names=["background", "cell", "edge"],
        in_channels=3,
    )
    network = build_network(spec)
    assert isinstance(network, UNet)
    assert (network.in_channels, network.num_classes, network.depth) == (3, 3, 3)
    assert network.eval()(torch.rand(1, 3, 10, 11)).shape == (1, 3, 10, 11)


def test_wrong_channel_count_names_the_expected_shape():
    network = UNet(3, 2, depth=1, base_width=4)
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\)"):
        network(torch.rand(1, 1, 8, 8))


@pytest.mark.parametrize("bad", [{"depth": 0}, {"base_width": 0}])
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValueError, match="at least 1"):
        UNet(1, 2, **bad)
