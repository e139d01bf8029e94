"""Winograd 3x3 convolutions: against float64 direct convolution, batch independence, bad input."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vocalab.features import vggish_model, winograd  # noqa: E402


def _case(n, c_in, c_out, h, w, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, w, c_in, generator=generator)
    weight = torch.randn(c_out, c_in, 3, 3, generator=generator) / (3 * c_in ** 0.5)
    bias = torch.randn(c_out, generator=generator)
    return x, weight, bias


def _exact(x, weight, bias):
    y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2).double(), weight.double(), bias.double(), padding=1)
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("shape", [(3, 5, 7, 12, 8, None), (9, 16, 4, 6, 4, 4), (1, 2, 3, 7, 5, None),
                                   (8, 8, 8, 2, 2, 3), (2, 64, 32, 12, 8, 2), (4, 3, 2, 9, 13, 1)])
def test_matches_the_exact_convolution_nearly_as_closely_as_direct_float32(shape):
    # sizes that are and are not whole 4x4 blocks, one partial block, examples not a whole chunk
    n, c_in, c_out, h, w, chunk = shape
    x, weight, bias = _case(n, c_in, c_out, h, w)
    exact = _exact(x, weight, bias)
    got = winograd.conv3x3(x, winograd.filter_transform(weight), bias, chunk)
    direct = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), weight, bias, padding=1).permute(0, 2, 3, 1)
    assert got.shape == (n, h, w, c_out) and got.dtype == torch.float32 and got.is_contiguous()
    scale = exact.abs().max().item()
    error = (got.double() - exact).abs().max().item() / scale
    # measured: 4e-6 to 6e-6 of the largest output on VGGish's layers (4 to 7 times the direct
    # convolution's error), 2e-7 to 4e-6 here (up to 14 times, on tiny layers that round less)
    assert error < 2e-5
    assert error < 20 * max((direct.double() - exact).abs().max().item() / scale, 1e-7)


def test_without_bias():
    x, weight, _ = _case(2, 3, 4, 6, 6)
    exact = _exact(x, weight, torch.zeros(4))
    got = winograd.conv3x3(x, winograd.filter_transform(weight), None)
    np.testing.assert_allclose(got.double().numpy(), exact.numpy(), atol=1e-5)


@pytest.mark.parametrize("chunk", [None, 4])
def test_an_example_gives_the_same_bytes_in_any_batch(chunk):
    x, weight, bias = _case(11, 6, 5, 8, 6, seed=1)
    u = winograd.filter_transform(weight)
    batch = winograd.conv3x3(x, u, bias, chunk)
    for i in (0, 3, 4, 10):  # first, last of a chunk of 4, first of the next, last (padded chunk)
        alone = winograd.conv3x3(x[i:i + 1], u, bias, chunk)
        assert torch.equal(alone[0], batch[i])


def test_chunks_are_powers_of_two_within_rows_and_floats():
    # VGGish's layers conv2, conv3_1, conv3_2, conv4_1, conv4_2: (h, w, c_in, c_out)
    layers = [(48, 32, 64, 128), (24, 16, 128, 256), (24, 16, 256, 256), (12, 8, 256, 512), (12, 8, 512, 512)]
    chosen = [winograd.chunk_for(*layer) for layer in layers]
    assert chosen == [8, 32, 32, 64, 64]
    for (h, w, c_in, c_out), chunk in zip(layers, chosen):
        blocks = -(-h // 4) * -(-w // 4)
        assert chunk * blocks <= winograd.ROWS and chunk * blocks * (c_in + c_out) <= winograd.FLOATS
        assert 2 * chunk * blocks > winograd.ROWS or 2 * chunk * blocks * (c_in + c_out) > winograd.FLOATS
    assert winograd.chunk_for(10, 9, 1, 1) == 64  # 3 x 3 partial blocks count whole: 768 // 9 = 85 -> 64
    assert winograd.chunk_for(4000, 4000, 512, 512) == 1


def test_refuses_filters_it_cannot_compute():
    with pytest.raises(ValueError, match="3x3"):
        winograd.filter_transform(torch.zeros(4, 3, 5, 5))
    x, weight, bias = _case(1, 3, 4, 4, 4)
    with pytest.raises(ValueError, match="input channels"):
        winograd.conv3x3(x, winograd.filter_transform(torch.zeros(4, 2, 3, 3)), bias)
    with pytest.raises(ValueError, match="choose one of direct, winograd"):
        vggish_model.build_vggish(conv="fft")


def test_vggish_uses_it_when_asked_on_cpu_float32_and_follows_new_weights():
    model = vggish_model.build_vggish(conv="winograd")
    vggish_model.init_random(model, 0)
    plain = vggish_model.build_vggish()  # conv: direct, the default
    examples = torch.randn(3, 96, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        plain.load_state_dict(model.state_dict())
        fast = model(examples)
        assert set(model._transformed) == set(vggish_model.WINOGRAD_CONVS)
        direct = plain(examples)
        assert not plain._transformed  # the switch turns the kernel off
    np.testing.assert_allclose(fast.numpy(), direct.numpy(), rtol=0, atol=1e-5 * direct.abs().max().item())
    vggish_model.init_random(model, 1)  # new weights: the transformed filters follow
    with torch.inference_mode():
        again = model(examples)
        plain.load_state_dict(model.state_dict())
        direct_again = plain(examples)
    assert not np.allclose(again.numpy(), fast.numpy())
    np.testing.assert_allclose(again.numpy(), direct_again.numpy(), rtol=0,
                               atol=1e-5 * direct_again.abs().max().item())
