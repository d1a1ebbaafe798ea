"""compress / decompress / inspect with every kind of model, and PCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaelab
from vaelab import VaelabError, metrics
from vaelab.apps import codec
from vaelab.apps.codec import container
from vaelab.apps.codec.refine import refine
from vaelab.models.entropy_models import scalar_step


@pytest.fixture(scope="module")
def pca(digit_images):
    from sklearn.datasets import load_digits

    train = np.round(load_digits().images[:-40] * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return codec.PCACoder.fit(train)


@pytest.mark.parametrize("which, quality", [("tiny_rd", 1), ("tiny_rd", 2.5), ("tiny_rd", 3),
                                            ("tiny_rd_context", 1), ("tiny_rd_context", 2.5),
                                            ("tiny_rd_groups", 1.5), ("tiny_rd_groups", 3), ("vae", 5), ("ae", 7), ("pca", 8)])
def test_round_trip_is_exact_at_the_code_level(request, digit_images, which, quality):
    model = request.getfixturevalue(which)
    data = codec.compress(model, digit_images, quality=quality)
    first = codec.decompress(data, model)
    second = codec.decompress(data, model)
    assert first.dtype == np.uint8 and first.shape == digit_images.shape
    assert np.array_equal(first, second)                          # bit for bit, every time
    assert codec.compress(model, digit_images, quality=quality) == data   # and the encoder too


@pytest.mark.parametrize("which, quality", [("tiny_rd", 2), ("tiny_rd_context", 2), ("tiny_rd_context", 2.7),
                                            ("tiny_rd_groups", 2.2), ("vae", 6), ("ae", 6), ("pca", 9)])
def test_decoded_images_are_the_decoder_on_the_rounded_latent(request, digit_images, which, quality):
    """Independent path: quantise the encoder's output with the step the quality names, decode."""
    model = request.getfixturevalue(which)
    decoded = codec.decompress(codec.compress(model, digit_images, quality=quality), model)
    x = torch.from_numpy(digit_images).float() / 255
    if which.startswith("tiny_rd"):  # the model's own forward pass rounds at that level
        with torch.no_grad():
            mean = model.likelihood(model(x, level=torch.full((len(x),), quality - 1.0)).x_hat).mean.numpy()
    elif which == "pca":
        y = (digit_images.reshape(len(x), -1) / 255.0 - model.mean) @ model.components.T
        step = scalar_step(quality)
        mean = (model.mean + np.rint(y / step) * step @ model.components).reshape(digit_images.shape)
    else:
        with torch.no_grad():
            y = model.encode_mean(x).double().numpy()
            step = scalar_step(quality)
            if which == "ae":
                step = step * (np.sqrt(np.diagonal(model.code_cov.double().numpy())) + 1e-6)
            mean = model.decode_mean(torch.from_numpy(np.rint(y / step) * step).float()).numpy()
    expected = np.clip(np.rint(mean * 255), 0, 255).astype(np.uint8)
    # float32 vs float64 steps may put a rare latent on the other side of a rounding boundary
    diff = np.abs(decoded.astype(int) - expected)
    assert (diff > 1).mean() < 0.01


@pytest.mark.parametrize("which, coder", [("tiny_rd", "rate-distortion"), ("tiny_rd_context", "rate-distortion-context"),
                                          ("tiny_rd_groups", "rate-distortion-context")])
def test_many_images_share_one_header(request, digit_images, which, coder):
    tiny_rd = request.getfixturevalue(which)
    data = codec.compress(tiny_rd, digit_images)
    info = codec.inspect(data)
    assert info["images"] == len(digit_images) and info["image_shape"] == [1, 8, 8]
    assert info["header_bytes"] + sum(info["image_bytes"]) == info["total_bytes"] == len(data)
    assert info["fingerprint"] == codec.coder_for(tiny_rd).fingerprint.hex()
    assert info["coder"] == coder and info["quality"] == 3.0     # default: the best level
    # one image alone: its bitstream is the same bytes, the header is paid in full
    alone = codec.compress(tiny_rd, digit_images[5:6])
    assert codec.inspect(alone)["image_bytes"] == [info["image_bytes"][5]]
    _, payloads = container.unpack(data)
    assert container.unpack(alone)[1] == [payloads[5]]
    # a batch's images are coded independently: any split gives the same per-image bitstreams
    assert codec.inspect(codec.compress(tiny_rd, digit_images[:7]))["image_bytes"] == info["image_bytes"][:7]


@pytest.mark.parametrize("which", ["tiny_rd", "tiny_rd_context", "tiny_rd_groups"])
def test_file_size_is_close_to_the_model_rate(request, digit_images, which):
    """The bytes written match the model's own rate −log₂ P(ŷ) (computed by the network's density)."""
    tiny_rd = request.getfixturevalue(which)
    data = codec.compress(tiny_rd, digit_images, quality=2)
    actual = np.array(codec.inspect(data)["image_bytes"]) * 8
    with torch.no_grad():
        y = tiny_rd.encode(torch.from_numpy(digit_images).float() / 255)
        steps = torch.exp(tiny_rd.log_steps[1]).expand_as(y)
        weights = tiny_rd.level_weights(torch.ones(len(y)))
        bits = tiny_rd.rate_bits(torch.round(y / steps) * steps, steps, weights).numpy()
    assert np.all(np.abs(actual - bits) <= 8 * 3)
    assert abs(actual.mean() - bits.mean()) <= 8


def test_higher_quality_costs_more_and_distorts_less(tiny_rd, tiny_rd_context, pca, digit_images):
    for model, qualities in ((tiny_rd, (1, 2, 3)), (tiny_rd_context, (1, 2, 3)), (pca, (4, 8, 12))):
        sizes, errors = [], []
        for q in qualities:
            data = codec.compress(model, digit_images, quality=q)
            decoded = codec.decompress(data, model)
            sizes.append(len(data))
            errors.append(float(((decoded.astype(float) - digit_images) ** 2).mean()))
        assert sizes == sorted(sizes) and errors == sorted(errors, reverse=True)


def test_pca_coder_round_trips_through_a_file(pca, digit_images, tmp_path):
    pca.save(tmp_path / "pca.safetensors")
    again = codec.PCACoder.load(tmp_path / "pca.safetensors")
    assert again.fingerprint == pca.fingerprint
    data = codec.compress(pca, digit_images, quality=10)
    assert np.array_equal(codec.decompress(data, again), codec.decompress(data, pca))
    # at a fine step PCA with all components is nearly lossless
    fine = codec.decompress(codec.compress(pca, digit_images, quality=18), pca)
    error = np.abs(fine.astype(int) - digit_images)
    assert error.max() <= 2 and error.mean() < 0.5


def test_wrong_model_names_the_fingerprints(tiny_rd, vae, digit_images):
    data = codec.compress(tiny_rd, digit_images[:3])
    with pytest.raises(VaelabError) as excinfo:
        codec.decompress(data, vae)
    message = str(excinfo.value)
    assert codec.coder_for(tiny_rd).fingerprint.hex() in message and codec.coder_for(vae).fingerprint.hex() in message
    assert "\n" not in message


def test_a_changed_weight_changes_the_fingerprint(tiny_rd_run):
    model = vaelab.load(tiny_rd_run)
    before = codec.coder_for(model).fingerprint
    with torch.no_grad():
        p = next(model.parameters())
        p.view(-1)[0] = torch.nextafter(p.view(-1)[0], torch.tensor(1e9))   # one ulp
    assert codec.coder_for(model).fingerprint != before


def test_checksum_is_checked_before_the_model_is_used(tiny_rd, digit_images):
    data = bytearray(codec.compress(tiny_rd, digit_images[:2]))
    data[-7] ^= 1
    with pytest.raises(VaelabError, match="checksum"):
        codec.decompress(bytes(data), model=None)   # never reaches the model


@pytest.mark.parametrize("images, quality, message", [
    (np.zeros((2, 1, 8, 8), np.float32), None, "uint8"),
    (np.zeros((2, 1, 9, 8), np.uint8), None, "shape"),
    (np.zeros((0, 1, 8, 8), np.uint8), None, "no images"),
    (np.zeros((2, 1, 8, 8), np.uint8), 0.5, "between 1 and 3"),
    (np.zeros((2, 1, 8, 8), np.uint8), float("nan"), "between"),
    (np.zeros((2, 1, 8, 8), np.uint8), "high", "a number"),
])
def test_bad_input_is_a_one_line_error(tiny_rd, images, quality, message):
    with pytest.raises(VaelabError, match=message):
        codec.compress(tiny_rd, images, quality=quality)


def test_torch_tensors_are_accepted(tiny_rd, digit_images):
    assert codec.compress(tiny_rd, torch.from_numpy(digit_images)) == codec.compress(tiny_rd, digit_images)


def test_refined_codes_decode_with_the_same_decoder_and_cost_no_more(tiny_rd, digit_images):
    """Refinement changes only the encoder's choice: the price rate + λ·MSE never goes up."""
    coder = codec.coder_for(tiny_rd)
    quality = 2.0
    lam = float(tiny_rd.lambdas[1])

    def price(data):
        decoded = codec.decompress(data, tiny_rd)
        bits = np.array(codec.inspect(data)["image_bytes"]) * 8
        return bits, metrics.mse(digit_images, decoded)

    plain = codec.compress(tiny_rd, digit_images, quality=quality)
    refined = codec.compress(tiny_rd, digit_images, quality=quality, refine=100)
    # the ideal price (what refinement minimises) of the codes in each file
    tables = coder.tables(quality)
    y = coder.analysis(digit_images)
    y_refined = refine(coder, digit_images, y, quality, 100)

    def ideal(latents):
        symbols = tables.symbols(latents)
        decoded = coder.synthesis(tables.values(symbols), quality)
        return tables.bits(symbols) + lam * metrics.mse(digit_images, decoded)

    assert np.all(ideal(y_refined) <= ideal(y) + 1.0)   # +1: uint8 rounding of the decoded pixels
    assert ideal(y_refined).mean() < 0.99 * ideal(y).mean()   # and it does lower it (2 % here)
    assert len(codec.decompress(refined, tiny_rd)) == len(digit_images)
    bits_plain, mse_plain = price(plain)
    bits_refined, mse_refined = price(refined)
    assert (bits_refined + lam * mse_refined).sum() <= (bits_plain + lam * mse_plain).sum() + 8 * len(digit_images)


def test_the_refinement_temperature_holds_then_falls_to_its_end():
    from vaelab.apps.codec.refine import REFINE_HOLD, REFINE_TAU, annealed_temperature

    steps = 200
    taus = [annealed_temperature(t, steps) for t in range(steps + 1)]
    hold = int(REFINE_HOLD * steps)
    assert taus[:hold] == [REFINE_TAU[0]] * hold
    assert all(a > b for a, b in zip(taus[hold:], taus[hold + 1:]))     # strictly falling after the hold
    assert taus[-1] == pytest.approx(REFINE_TAU[1])
    assert annealed_temperature(0, 1) == REFINE_TAU[0] and annealed_temperature(1, 1) == pytest.approx(REFINE_TAU[1])


def test_soft_rounding_mixes_the_two_neighbouring_integers_and_hardens_as_it_cools():
    from vaelab.apps.codec.refine import soft_rounding

    u = torch.tensor([-1.7, -0.2, 0.0, 0.3, 2.5, 3.9]).repeat(4000, 1)
    for tau in (0.5, 0.1, 0.01):
        soft = soft_rounding(u, tau, torch.Generator().manual_seed(0))
        assert torch.all((soft >= torch.floor(u)) & (soft <= torch.floor(u) + 1))
        assert torch.equal(soft, soft_rounding(u, tau, torch.Generator().manual_seed(0)))   # seeded
    # Gumbel-softmax at temperature τ: P(up) = σ((atanh(r) − atanh(1 − r))/τ) for distance r
    for tau in (0.5, 0.1):
        up = (soft_rounding(u, tau, torch.Generator().manual_seed(1)) - torch.floor(u) > 0.5).double().mean(0)
        r = (u[0] - torch.floor(u[0])).double().clamp(1e-5, 1 - 1e-5)
        expected = torch.sigmoid((torch.atanh(r) - torch.atanh(1 - r)) / tau)
        assert torch.allclose(up, expected, atol=0.03)
    cold = soft_rounding(u, 0.01, torch.Generator().manual_seed(2))
    assert (cold - torch.round(u)).abs()[:, [0, 1, 2, 3, 5]].max() < 1e-3   # all but 2.5 round to nearest
    grad = torch.zeros(6, requires_grad=True)
    soft_rounding(grad + 0.3, 0.5, torch.Generator().manual_seed(3)).sum().backward()
    assert torch.all(grad.grad > 0)   # moving u up makes rounding up likelier: the mix follows it


def test_refine_needs_a_rate_distortion_model(vae, digit_images):
    with pytest.raises(VaelabError, match="rate–distortion model"):
        codec.compress(vae, digit_images, quality=5, refine=3)
    with pytest.raises(VaelabError, match="whole number"):
        codec.compress(vae, digit_images, quality=5, refine=-1)


@pytest.mark.parametrize("which", ["tiny_rd", "tiny_rd_context", "tiny_rd_groups"])
def test_bytes_and_pixels_do_not_depend_on_threads_or_batches(request, digit_images, which):
    tiny_rd = request.getfixturevalue(which)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        data_two = codec.compress(tiny_rd, digit_images, quality=2.5)
        pixels_two = codec.decompress(data_two, tiny_rd)
    finally:
        torch.set_num_threads(before)
    data_one = codec.compress(tiny_rd, digit_images, quality=2.5)
    assert data_one == data_two
    assert np.array_equal(codec.decompress(data_one, tiny_rd), pixels_two)
    pieces = [codec.decompress(codec.compress(tiny_rd, digit_images[i:i + 3], quality=2.5), tiny_rd)
              for i in range(0, len(digit_images), 3)]
    assert np.array_equal(np.concatenate(pieces), pixels_two)


@pytest.mark.parametrize("which", ["tiny_rd", "tiny_rd_context"])
def test_compress_to_psnr_finds_the_lowest_quality_reaching_the_target(request, digit_images, which):
    model, images = request.getfixturevalue(which), digit_images[:16]

    def reached(quality: float) -> float:
        data = codec.compress(model, images, quality=quality)
        return float(metrics.psnr(images, codec.decompress(data, model)).mean())

    lo, hi = codec.coder_for(model).quality_range
    target = (reached(lo) + reached(hi)) / 2
    data, quality, psnr = codec.compress_to_psnr(model, images, target)
    assert lo < quality < hi and psnr >= target
    # the file is the plain one at that quality, and the PSNR is what its receiver decodes
    assert data == codec.compress(model, images, quality=quality)
    assert psnr == pytest.approx(reached(quality))
    # bisection leaves the quality one resolution step lower missing the target
    assert reached(quality - (hi - lo) / 2**codec.api.PSNR_SEARCH_ROUNDS) < target
    assert len(data) < len(codec.compress(model, images, quality=hi))


def test_compress_to_psnr_at_the_ends_of_the_range(tiny_rd, digit_images):
    images = digit_images[:8]
    data, quality, psnr = codec.compress_to_psnr(tiny_rd, images, 1.0)
    assert quality == 1.0 and data == codec.compress(tiny_rd, images, quality=1.0)
    with pytest.raises(VaelabError, match=r"reach at most [\d.]+ dB with this model \(quality 3\), below the 90 dB"):
        codec.compress_to_psnr(tiny_rd, images, 90.0)
    with pytest.raises(VaelabError, match="positive number of dB"):
        codec.compress_to_psnr(tiny_rd, images, float("nan"))
