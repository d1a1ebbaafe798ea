"""The context model over the rate–distortion latent, and its exact integer copy in the codec."""

from __future__ import annotations

import itertools
import struct
import zlib
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaelab import VaelabError, metrics
from vaelab.apps import codec
from vaelab.models import build_model
from vaelab.models import rd_context_exact as context
from vaelab.models.rd import RateDistortionConfig
from vaelab.models.rd_context import LatentContextModel


def _randomised(model: LatentContextModel, seed: int, size: float = 0.3) -> LatentContextModel:
    """Give every weight (the output layer starts at zero) a random value of a trained size."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * size)
    return model


def test_probabilities_of_all_codes_sum_to_one():
    """Π_p P(ŷ_p | ŷ_<p) is a distribution over whole grids only if each factor looks back only:
    summed over every grid of a 1×1×3 latent (Δ = 1, 81 values each) it must give 1."""
    model = _randomised(LatentContextModel((1, 1, 3), levels=2, width=6, position_speed=1.0), 1, 0.15).double()
    values = torch.arange(-40, 41, dtype=torch.float64)
    grids = torch.tensor(list(itertools.product(values.tolist(), repeat=3)), dtype=torch.float64)   # (81³, 3)
    weights = torch.tensor([[0.3, 0.7]], dtype=torch.float64).expand(len(grids), -1)
    with torch.no_grad():
        bits = model.bits(grids, torch.ones_like(grids), weights)
    assert float((2.0 ** -bits.double()).sum()) == pytest.approx(1.0, abs=1e-6)


def test_with_channel_groups_the_probabilities_of_all_codes_still_sum_to_one():
    """Two positions of two channels in two groups (Δ = 2, 21 values each): each group may look
    at the groups before it at its own position, never after, or the sum would not be 1."""
    model = _randomised(LatentContextModel((2, 1, 2), levels=1, width=6, position_speed=1.0, groups=2), 7, 0.15)
    model = model.double()
    values = torch.arange(-20, 21, 2, dtype=torch.float64)
    grids = torch.tensor(list(itertools.product(values.tolist(), repeat=4)), dtype=torch.float64)   # (21⁴, 4)
    weights = torch.ones(len(grids), 1, dtype=torch.float64)
    with torch.no_grad():
        bits = model.bits(grids, torch.full_like(grids, 2.0), weights)
    assert float((2.0 ** -bits.double()).sum()) == pytest.approx(1.0, abs=1e-6)


def test_a_channel_group_is_predicted_from_earlier_groups_at_its_position():
    model = _randomised(LatentContextModel((6, 3, 3), levels=1, width=8, position_speed=1.0, groups=3), 8)
    grid = torch.randn(1, 6, 3, 3)
    loc, log_scale = model(grid, torch.ones(1, 1))
    for g in range(3):
        changed = grid.clone()
        changed[:, 2 * g:2 * g + 2, 1, 1] += 5.0
        loc2, _ = model(changed, torch.ones(1, 1))
        assert torch.equal(loc[:, :2 * g + 2, 1, 1], loc2[:, :2 * g + 2, 1, 1])   # this group and those before
        if g < 2:
            assert not torch.equal(loc[:, 2 * g + 2:, 1, 1], loc2[:, 2 * g + 2:, 1, 1])
        assert torch.equal(loc[:, :, 0], loc2[:, :, 0]) and torch.equal(loc[:, :, 1, 0], loc2[:, :, 1, 0])


def test_a_model_given_channel_groups_starts_as_the_one_without():
    """The groups' outputs start at zero, so fine-tuning a run into channel context starts where it was."""
    plain = _randomised(LatentContextModel((4, 3, 3), levels=2, width=8, position_speed=1.0), 9)
    grouped = LatentContextModel((4, 3, 3), levels=2, width=8, position_speed=1.0, groups=2)
    grouped.load_state_dict(plain.state_dict(), strict=False)
    grid, weights = torch.randn(5, 4, 3, 3), torch.rand(5, 2)
    assert all(torch.equal(a, b) for a, b in zip(plain(grid, weights), grouped(grid, weights)))


def test_channel_groups_must_divide_the_channels():
    with pytest.raises(VaelabError, match="must divide"):
        LatentContextModel((6, 2, 2), levels=1, width=4, position_speed=1.0, groups=4)


def test_a_position_is_predicted_from_earlier_positions_only():
    model = _randomised(LatentContextModel((3, 4, 5), levels=1, width=8, position_speed=1.0), 2)
    grid = torch.randn(1, 3, 4, 5)
    weights = torch.ones(1, 1)
    loc, log_scale = model(grid, weights)
    for i, j in [(0, 0), (1, 2), (3, 4)]:
        changed = grid.clone()
        changed[:, :, i, j] += 5.0
        loc2, log_scale2 = model(changed, weights)
        flat = torch.arange(20).view(4, 5)
        same = flat <= i * 5 + j                 # this position and every earlier one
        assert torch.equal(loc[..., same], loc2[..., same]) and torch.equal(log_scale[..., same], log_scale2[..., same])
        if i * 5 + j < 19:
            assert not torch.equal(loc[..., ~same], loc2[..., ~same])


def test_the_integer_copy_predicts_what_the_network_does(tiny_rd_context, digit_images):
    """Fixed point: μ and log s within a thousandth of the float net (float32 itself is off by ~1e-6)."""
    for ctx, seed in ((tiny_rd_context.context, None), (LatentContextModel((5, 3, 4), 3, 16, 10.0), 3),
                      (LatentContextModel((6, 3, 4), 3, 16, 10.0, groups=3), 4)):
        if seed is not None:
            ctx = _randomised(ctx, seed)
        net = context.IntegerContextNet(ctx)
        M, h, w = ctx.grid
        r = net.radius
        rng = np.random.default_rng(0)
        values = np.round(rng.normal(0, 2, (6, M, h, w)) * 8) / 8          # latents on a 1/8 grid
        level_weights = np.eye(ctx.level.in_features)[-1]
        with torch.no_grad():
            loc, log_scale = ctx(torch.from_numpy(values).float(), torch.from_numpy(level_weights).float().expand(6, -1))
        padded = np.zeros((6, M, h + 2 * r, w + 2 * r), dtype=np.int64)
        padded[:, :, r:r + h, r:r + w] = context._fixed(values, context.ACTIVATION_BITS)
        bias = net.level_bias(level_weights)
        for i in range(h):
            for j in range(w):
                int_loc, int_scale = net.predict(padded, i, j, bias)
                assert np.allclose(int_loc, loc[:, :, i, j].numpy(), atol=1e-3)
                assert np.allclose(np.log(int_scale), log_scale[:, :, i, j].numpy(), atol=1e-3)


def test_decoding_recovers_the_clamped_code_even_for_wild_latents(tiny_rd_context):
    """Latents far outside anything trained are clamped to the tables' support, and decoding
    gives back exactly the values the encoder coded: decoding again after re-encoding changes nothing."""
    coder = tiny_rd_context.entropy_model()
    rng = np.random.default_rng(1)
    D = tiny_rd_context.latent_dim
    y = np.concatenate([rng.normal(0, 1, (3, D)), rng.normal(0, 1e4, (3, D)), np.full((1, D), 1e9)])
    payloads = coder.compress_latents(y, 2.0)
    values = coder.decompress_latents(payloads, 2.0)
    assert np.all(np.isfinite(values))
    assert coder.compress_latents(values, 2.0) == payloads
    assert np.array_equal(coder.decompress_latents(payloads, 2.0), values)
    small = np.abs(y[:3] / coder.steps(2.0)) < 30
    assert np.array_equal(values[:3][small], (np.rint(y[:3] / coder.steps(2.0)) * coder.steps(2.0))[small])


@pytest.mark.parametrize("which", ["tiny_rd_context", "tiny_rd_groups"])
def test_sampling_draws_codes_the_decoder_turns_into_images(request, which):
    model = request.getfixturevalue(which)
    first = model.sample(5, generator=torch.Generator().manual_seed(0))
    again = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert first.shape == (5, 1, 8, 8) and torch.equal(first, again)
    assert torch.all((first >= 0) & (first <= 1))


def test_refining_under_the_context_model_lowers_the_price(tiny_rd_context, digit_images):
    lam = float(tiny_rd_context.lambdas[1])

    def price(data):
        decoded = codec.decompress(data, tiny_rd_context)
        bits = np.array(codec.inspect(data)["image_bytes"]) * 8
        return (bits + lam * metrics.mse(digit_images, decoded)).sum()

    plain = codec.compress(tiny_rd_context, digit_images, quality=2.0)
    refined = codec.compress(tiny_rd_context, digit_images, quality=2.0, refine=100)
    assert price(refined) < 0.99 * price(plain)   # 2 % lower here, with whole bytes per image
    # refinement draws its soft roundings from a fixed seed: the same file every time
    assert codec.compress(tiny_rd_context, digit_images, quality=2.0, refine=100) == refined


def test_a_context_model_has_no_fixed_tables(tiny_rd_context):
    with pytest.raises(VaelabError, match="no fixed tables"):
        codec.coder_for(tiny_rd_context).tables(2.0)


@pytest.fixture(scope="module", params=[1, 2], ids=["one-group", "two-groups"])
def untrained(request):
    torch.manual_seed(0)
    config = RateDistortionConfig(hidden=[8, 8], latent_channels=4, rd_lambdas=[0.1, 1.0], rd_context=8,
                                  rd_context_groups=request.param)
    model = build_model(config, (1, 8, 8)).eval()
    _randomised(model.context, 4)
    return model


@pytest.fixture(scope="module")
def valid_file(untrained):
    images = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    return codec.compress(untrained, images, quality=2)


@settings(deadline=timedelta(seconds=2), derandomize=True, database=None, max_examples=600,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_damaged_streams_give_one_line_errors_or_images(untrained, valid_file, seed):
    """Damage behind a recomputed checksum reaches the context decoder: it must end in a
    VaelabError or in images of the announced shape, never anything else, never a hang."""
    rng = np.random.default_rng(seed)
    body = bytearray(valid_file[:-4])
    header_end = len(body) - sum(codec.inspect(valid_file)["image_bytes"])
    for _ in range(int(rng.integers(1, 4))):
        at = int(rng.integers(header_end, len(body)))
        body[at] = int(rng.integers(0, 256))
    data = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    try:
        out = codec.decompress(data, untrained)
    except VaelabError as exc:
        assert "\n" not in str(exc)
    else:
        assert out.shape == (3, 1, 8, 8) and out.dtype == np.uint8


def test_exact_products_agree_with_integer_arithmetic_on_both_sides_of_the_bound():
    rng = np.random.default_rng(5)
    w = rng.integers(-2**16, 2**16, (300, 40))
    matrix = context._ExactMatrix(w)
    for magnitude in (2**20, 2**30, 2**40):       # the last exceeds 2^53 together with the weights
        a = rng.integers(-magnitude, magnitude, (17, 300))
        assert np.array_equal(matrix.times(a), a @ w)
