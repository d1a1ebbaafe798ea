"""Defs. 1.3.1–1.3.4, Remark 1.3.2, Lemma 1.3.3, Cor. 1.3.5, Props. 1.3.6–1.3.9 against loops.

The loops below are eqs. (1.7)–(1.10) with the thesis' 1-based indices written out: the window
of output pixel (i, j) (1-based) with stride s starts at input pixel ((i−1)s + 1, (j−1)s + 1),
and entry (m, n) of the window is input pixel ((i−1)s + m, (j−1)s + n).
"""

from __future__ import annotations

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.theory import (
    AvgPool,
    Convolution,
    ImageLayer,
    ImageOperator,
    MaxPool,
    MinPool,
    avg_pool,
    channel_kind,
    check_pixels,
    convolve,
    flatten_image,
    max_pool,
    min_pool,
    output_size,
    to_float,
    to_uint8,
    unflatten_image,
)


def _psi(x, i, j):
    """(ψ)_ij with 1-based i, j, for a single-channel image given as nested lists."""
    return x[i - 1][j - 1]


def _windows(M0, N0, p1, p2, s):
    """Yield (i, j, [(row, col), ...]) for every output pixel, all 1-based."""
    M1 = (M0 - p1) // s + 1
    N1 = (N0 - p2) // s + 1
    for i in range(1, M1 + 1):
        for j in range(1, N1 + 1):
            cells = [((i - 1) * s + m, (j - 1) * s + n) for m in range(1, p1 + 1) for n in range(1, p2 + 1)]
            yield i, j, cells


def _loop_conv(channel, kernel, s):
    """Eq. (1.7): (ψ_1)_ij = Σ_{m,n} (ψ_0)_{(i−1)s+m, (j−1)s+n} k_mn, one channel."""
    M0, N0 = len(channel), len(channel[0])
    p1, p2 = len(kernel), len(kernel[0])
    out = [[0.0] * ((N0 - p2) // s + 1) for _ in range((M0 - p1) // s + 1)]
    for i, j, _ in _windows(M0, N0, p1, p2, s):
        out[i - 1][j - 1] = sum(
            _psi(channel, (i - 1) * s + m, (j - 1) * s + n) * kernel[m - 1][n - 1]
            for m in range(1, p1 + 1)
            for n in range(1, p2 + 1)
        )
    return out


def _loop_pool(channel, p1, p2, s, reduce):
    """Eqs. (1.8)–(1.10): reduce over the window I of each output pixel, one channel."""
    M0, N0 = len(channel), len(channel[0])
    out = [[0.0] * ((N0 - p2) // s + 1) for _ in range((M0 - p1) // s + 1)]
    for i, j, cells in _windows(M0, N0, p1, p2, s):
        out[i - 1][j - 1] = reduce([_psi(channel, r, c) for r, c in cells])
    return out


def _per_channel(x, fn):
    return torch.tensor([[fn(ch) for ch in img] for img in x.tolist()], dtype=torch.float64)


CASES = [  # (M0, N0, p1, p2, stride)
    (5, 5, 1, 1, 1),
    (5, 5, 3, 3, 1),
    (7, 6, 2, 3, 1),
    (7, 6, 3, 2, 2),
    (8, 9, 2, 2, 2),
    (9, 7, 3, 3, 3),
    (6, 6, 6, 6, 1),
    (6, 8, 1, 4, 3),
]


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def test_flatten_stacks_rows_as_in_lemma_1_3_3(gen):
    x = torch.randn(3, 2, 4, 5, generator=gen)
    # Lemma 1.3.3 per channel: (ψ̂_1ᵀ, …, ψ̂_Mᵀ), the rows ψ̂_i = (ψ_i1, …, ψ_iN) one after another
    expected = torch.tensor(
        [[v for channel in img for row in channel for v in row] for img in x.tolist()], dtype=x.dtype
    )
    assert torch.equal(flatten_image(x), expected)
    assert torch.equal(unflatten_image(flatten_image(x), (2, 4, 5)), x)
    with pytest.raises(VaelabError):
        unflatten_image(expected, (2, 4, 4))
    with pytest.raises(VaelabError):
        flatten_image(torch.zeros(4, 5))


@pytest.mark.parametrize("M0, N0, p1, p2, s", CASES)
def test_convolution_equals_eq_1_7(M0, N0, p1, p2, s, gen):
    x = torch.randn(2, 3, M0, N0, dtype=torch.float64, generator=gen)
    k = torch.randn(p1, p2, dtype=torch.float64, generator=gen)
    out = convolve(x, k, stride=s)
    assert out.shape == (2, 3, output_size(M0, p1, s), output_size(N0, p2, s))
    assert torch.allclose(out, _per_channel(x, lambda ch: _loop_conv(ch, k.tolist(), s)), atol=1e-12)


@pytest.mark.parametrize("M0, N0, p1, p2, s", CASES[1:5])
def test_per_channel_and_multi_channel_kernels(M0, N0, p1, p2, s, gen):
    x = torch.randn(2, 3, M0, N0, dtype=torch.float64, generator=gen)
    per_channel = torch.randn(3, p1, p2, dtype=torch.float64, generator=gen)
    out = convolve(x, per_channel, stride=s)
    expected = torch.tensor(
        [[_loop_conv(ch, per_channel[c].tolist(), s) for c, ch in enumerate(img)] for img in x.tolist()], dtype=torch.float64
    )
    assert torch.allclose(out, expected, atol=1e-12)
    general = torch.randn(4, 3, p1, p2, dtype=torch.float64, generator=gen)
    out = convolve(x, general, stride=s)
    assert out.shape[1] == 4
    expected = torch.zeros_like(out)
    for n, img in enumerate(x.tolist()):
        for o in range(4):
            for c in range(3):
                expected[n, o] += torch.tensor(_loop_conv(img[c], general[o, c].tolist(), s), dtype=torch.float64)
    assert torch.allclose(out, expected, atol=1e-12)


@pytest.mark.parametrize("M0, N0, p1, p2, s", CASES)
def test_pools_equal_eqs_1_8_to_1_10(M0, N0, p1, p2, s, gen):
    x = torch.randn(2, 3, M0, N0, dtype=torch.float64, generator=gen)
    expected_avg = _per_channel(x, lambda ch: _loop_pool(ch, p1, p2, s, lambda v: sum(v) / (p1 * p2)))
    expected_min = _per_channel(x, lambda ch: _loop_pool(ch, p1, p2, s, min))
    expected_max = _per_channel(x, lambda ch: _loop_pool(ch, p1, p2, s, max))
    assert torch.allclose(avg_pool(x, (p1, p2), stride=s), expected_avg, atol=1e-12)
    assert torch.equal(min_pool(x, (p1, p2), stride=s), expected_min)
    assert torch.equal(max_pool(x, (p1, p2), stride=s), expected_max)
    assert torch.equal(MinPool((p1, p2), s)(x), expected_min)
    assert torch.equal(MaxPool((p1, p2), s)(x), expected_max)
    assert torch.allclose(AvgPool((p1, p2), s)(x), expected_avg, atol=1e-12)


def test_stride_one_gives_the_thesis_output_sizes():
    x = torch.zeros(1, 1, 10, 7)
    assert avg_pool(x, (3, 2)).shape == (1, 1, 10 - 3 + 1, 7 - 2 + 1)
    assert convolve(x, torch.ones(4, 4)).shape == (1, 1, 10 - 4 + 1, 7 - 4 + 1)
    assert max_pool(x, 2, stride=2).shape == (1, 1, 5, 3)  # ⌊(10−2)/2⌋+1, ⌊(7−2)/2⌋+1


def test_operators_are_differentiable(gen):
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    k = torch.randn(2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: convolve(a, b, stride=2), (x, k))
    assert torch.autograd.gradcheck(lambda a: avg_pool(a, (2, 3), stride=1), (x,))
    # random values have no ties, so min/max are differentiable there too
    assert torch.autograd.gradcheck(lambda a: min_pool(a, 2, stride=1), (x,))
    assert torch.autograd.gradcheck(lambda a: max_pool(a, (3, 2), stride=2), (x,))


@pytest.mark.parametrize(
    "call",
    [
        lambda: convolve(torch.zeros(1, 1, 3, 3), torch.ones(4, 4)),
        lambda: convolve(torch.zeros(1, 1, 3, 3), torch.ones(2, 2), stride=0),
        lambda: convolve(torch.zeros(1, 2, 3, 3), torch.ones(3, 2, 2)),
        lambda: convolve(torch.zeros(1, 2, 3, 3), torch.ones(1, 3, 2, 2)),
        lambda: convolve(torch.zeros(1, 2, 3, 3), torch.ones(2)),
        lambda: convolve(torch.zeros(3, 3), torch.ones(2, 2)),
        lambda: convolve(torch.zeros(1, 1, 3, 3, dtype=torch.uint8), torch.ones(2, 2)),
        lambda: avg_pool(torch.zeros(1, 1, 3, 3), (2, 4)),
        lambda: max_pool(torch.zeros(1, 1, 3, 3), 2, stride=-1),
        lambda: min_pool(torch.zeros(1, 3, 3), 2),
        lambda: avg_pool(torch.zeros(1, 1, 3, 3), (2, 2, 2)),
        lambda: max_pool(torch.zeros(1, 1, 3, 3), True),
    ],
)
def test_bad_shapes_and_arguments_are_refused(call):
    with pytest.raises(VaelabError):
        call()


def test_image_operators_keep_channels(gen):
    x = torch.randn(2, 3, 6, 6, generator=gen)
    for op in (Convolution(3, 3), AvgPool(2), MinPool((2, 3), 2), MaxPool(3, 3)):
        assert op(x).shape[1] == 3

    class Mixer(ImageOperator):
        def operate(self, x):
            return x.sum(dim=1, keepdim=True)

    with pytest.raises(VaelabError, match="Def. 1.3.4"):
        Mixer()(x)


def test_convolution_module_uses_its_kernel(gen):
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, generator=gen)
    k = torch.randn(3, 3, dtype=torch.float64, generator=gen)
    conv = Convolution(2, 3, stride=2, kernel=k).double()
    expected = _per_channel(x, lambda ch: _loop_conv(ch, k.tolist(), 2))
    assert torch.allclose(conv(x), expected, atol=1e-12)
    with pytest.raises(VaelabError):
        Convolution(2, 3, kernel=torch.ones(2, 2))


def test_image_layer_is_phi_of_t_psi_plus_b(gen):
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=gen)
    layer = ImageLayer(AvgPool((2, 2), 1), channels=2, activation="relu").double()
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.3, -0.2]).reshape(2, 1, 1))
    expected = [
        [[[max(0.0, v + [0.3, -0.2][c]) for v in row] for row in _loop_pool(ch, 2, 2, 1, lambda w: sum(w) / 4)] for c, ch in enumerate(img)]
        for img in x.tolist()
    ]
    assert torch.allclose(layer(x), torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    with pytest.raises(VaelabError):
        layer(torch.randn(1, 3, 5, 4, dtype=torch.float64))
    with pytest.raises(VaelabError):
        ImageLayer(torch.nn.Identity(), channels=2)


def test_pixel_domain_and_channel_kinds():
    assert channel_kind(1) == "black-and-white"
    assert channel_kind(3) == "rgb"
    assert channel_kind(4) == "multi-channel"
    with pytest.raises(VaelabError):
        channel_kind(0)
    every_value = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert check_pixels(every_value) == "black-and-white"
    assert check_pixels(torch.zeros(2, 3, 4, 4, dtype=torch.int64)) == "rgb"
    assert torch.equal(to_uint8(to_float(every_value)), every_value)
    assert to_float(every_value).max().item() == 1.0 and to_float(every_value).min().item() == 0.0
    for bad in (torch.full((1, 1, 2, 2), 256), torch.full((1, 1, 2, 2), -1), torch.zeros(1, 1, 2, 2), torch.zeros(2, 2, dtype=torch.uint8)):
        with pytest.raises(VaelabError):
            check_pixels(bad)
    assert to_uint8(torch.tensor([[[[-0.5, 0.5, 1.7]]]])).tolist() == [[[[0, 128, 255]]]]
