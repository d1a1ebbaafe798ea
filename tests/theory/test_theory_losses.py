"""Def. 1.2.1, Ex. 1.2.2, Def. 1.2.3, Lemma 1.2.5, Def. 2.1.1, Ex. 2.1.2 against loops."""

from __future__ import annotations

import math

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.theory import (
    DenseNetwork,
    bce_loss,
    bce_with_logits_loss,
    empirical_risk,
    linear_error,
    mse_loss,
    risk,
    squared_error,
)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(99)


def test_squared_and_linear_error_equal_ex_1_2_2(gen):
    y = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    p = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    sq = [sum((a - b) ** 2 for a, b in zip(yr, pr)) for yr, pr in zip(y.tolist(), p.tolist())]
    assert squared_error(y, p).tolist() == pytest.approx(sq, rel=1e-12)
    assert linear_error(y, p).tolist() == pytest.approx([math.sqrt(v) for v in sq], rel=1e-12)
    # the norm's gradient is defined (0) at a perfect prediction
    q = y.clone().requires_grad_(True)
    linear_error(y, q).sum().backward()
    assert torch.equal(q.grad, torch.zeros_like(q))


def _loop_mse(psi, f):
    """Ex. 2.1.2: Σ_i Σ_j ‖ψ_ij − f(ψ)_ij‖², the norm over the channels of pixel (i, j)."""
    out = []
    for a, b in zip(psi.tolist(), f.tolist()):
        C, M, N = len(a), len(a[0]), len(a[0][0])
        out.append(sum(sum((a[c][i][j] - b[c][i][j]) ** 2 for c in range(C)) for i in range(M) for j in range(N)))
    return out


def _loop_bce(psi, f):
    """Ex. 2.1.2: −(1/MN) Σ_i Σ_j Σ_c (ψ log f + (1 − ψ) log(1 − f)); 0·log 0 = 0."""
    def xlog(a, b):
        return 0.0 if a == 0 else a * math.log(b)

    out = []
    for a, b in zip(psi.tolist(), f.tolist()):
        C, M, N = len(a), len(a[0]), len(a[0][0])
        total = sum(
            xlog(a[c][i][j], b[c][i][j]) + xlog(1 - a[c][i][j], 1 - b[c][i][j])
            for c in range(C)
            for i in range(M)
            for j in range(N)
        )
        out.append(-total / (M * N))
    return out


@pytest.mark.parametrize("C", [1, 3])
def test_mse_equals_ex_2_1_2(C, gen):
    psi = torch.rand(3, C, 4, 5, dtype=torch.float64, generator=gen)
    f = torch.rand(3, C, 4, 5, dtype=torch.float64, generator=gen)
    assert mse_loss(psi, f).tolist() == pytest.approx(_loop_mse(psi, f), rel=1e-12)
    # a flat network output is read in the order of Lemma 1.3.3
    assert torch.equal(mse_loss(psi, f.reshape(3, -1)), mse_loss(psi, f))
    assert mse_loss(psi.reshape(3, -1), f.reshape(3, -1)).tolist() == pytest.approx(_loop_mse(psi, f), rel=1e-12)


@pytest.mark.parametrize("C", [1, 3])
def test_bce_equals_ex_2_1_2(C, gen):
    psi = torch.rand(3, C, 4, 5, dtype=torch.float64, generator=gen)
    psi[0] = (psi[0] > 0.5).to(psi.dtype)  # binary pixels (Remark 2.1.3) and grey ones
    f = torch.rand(3, C, 4, 5, dtype=torch.float64, generator=gen) * 0.98 + 0.01
    assert bce_loss(psi, f).tolist() == pytest.approx(_loop_bce(psi, f), rel=1e-12)
    if C == 1:  # vectors (N, D) are D one-channel pixels
        assert bce_loss(psi.reshape(3, -1), f.reshape(3, -1)).tolist() == pytest.approx(_loop_bce(psi, f), rel=1e-12)


def test_bce_is_clamp_free_where_data_agree():
    psi = torch.tensor([[0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    probs = torch.tensor([[0.0, 1.0, 0.25, 0.5]], dtype=torch.float64, requires_grad=True)
    loss = bce_loss(psi, probs)
    expected = -(math.log(0.75) + math.log(0.5)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-14)
    loss.sum().backward()
    assert torch.isfinite(probs.grad).all()
    # d/df of −log(1 − f) at f = 0 is 1, of −log f at f = 1 is −1 (each divided by MN = 4)
    assert probs.grad[0, :2].tolist() == pytest.approx([0.25, -0.25], rel=1e-14)
    assert bce_loss(torch.ones(1, 1), torch.zeros(1, 1)).item() == math.inf  # an "impossible" pixel occurred


def test_bce_minimised_at_grey_target():
    # Remark 2.1.3: with grey targets the loss still works; its minimiser is f = ψ
    psi = torch.full((1, 1), 0.3, dtype=torch.float64)
    grid = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    values = torch.stack([bce_loss(psi, g.reshape(1, 1)) for g in grid]).reshape(-1)
    assert grid[values.argmin()].item() == pytest.approx(0.3, abs=1e-9)


def test_bce_from_logits_equals_bce_of_sigmoid(gen):
    psi = torch.rand(4, 2, 3, 3, dtype=torch.float64, generator=gen)
    logits = (torch.rand(4, 2, 3, 3, dtype=torch.float64, generator=gen) - 0.5) * 16
    expected = _loop_bce(psi, torch.sigmoid(logits))
    assert bce_with_logits_loss(psi, logits).tolist() == pytest.approx(expected, rel=1e-10)


def test_bce_from_logits_is_finite_for_huge_logits():
    psi = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.5]])
    logits = torch.tensor([[-1000.0, 1000.0, 1000.0, -1000.0, 1000.0]], requires_grad=True)
    loss = bce_with_logits_loss(psi, logits)
    # per entry: log(1 + e^ℓ) − ψℓ  →  1000, 1000, 0, 0, 500
    assert loss.item() == pytest.approx((1000 + 1000 + 0 + 0 + 500) / 5, rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_loss_shape_mismatch_is_refused():
    with pytest.raises(VaelabError, match="shape"):
        mse_loss(torch.zeros(2, 1, 2, 2), torch.zeros(2, 5))
    with pytest.raises(VaelabError):
        squared_error(torch.zeros(2, 3), torch.zeros(3, 2, 1))
    with pytest.raises(VaelabError):
        bce_loss(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2))


def test_empirical_risk_is_the_mean_of_per_example_losses(gen):
    torch.manual_seed(0)
    net = DenseNetwork("4-3-2", activation="tanh").double()
    xs = torch.randn(7, 4, dtype=torch.float64, generator=gen)
    ys = torch.randn(7, 2, dtype=torch.float64, generator=gen)
    per_example = [squared_error(ys[i : i + 1], net(xs[i : i + 1])).item() for i in range(7)]
    assert empirical_risk(squared_error, net, xs, ys).item() == pytest.approx(sum(per_example) / 7, rel=1e-12)
    # unsupervised (Def. 2.1.1): each input is its own target
    ae = DenseNetwork("4-2-4", activation="tanh").double()
    per_example = [mse_loss(xs[i : i + 1], ae(xs[i : i + 1])).item() for i in range(7)]
    assert empirical_risk(mse_loss, ae, xs).item() == pytest.approx(sum(per_example) / 7, rel=1e-12)
    with pytest.raises(VaelabError):
        empirical_risk(squared_error, net, xs, ys[:5])
    with pytest.raises(VaelabError, match="one value per example"):
        empirical_risk(lambda y, p: (y - p).square().sum(), net, xs, ys)


def test_lemma_1_2_5_gradient_is_the_mean_of_per_example_gradients(gen):
    torch.manual_seed(1)
    net = DenseNetwork("3-5-4-2", activation="tanh", output_activation=None).double()
    xs = torch.randn(6, 3, dtype=torch.float64, generator=gen)
    ys = torch.randn(6, 2, dtype=torch.float64, generator=gen)
    params = [p for pair in net.theta for p in pair]
    full = torch.autograd.grad(empirical_risk(squared_error, net, xs, ys), params)
    per_example = [torch.autograd.grad(squared_error(ys[i : i + 1], net(xs[i : i + 1])).sum(), params) for i in range(6)]
    for k, g in enumerate(full):
        mean = sum(grads[k] for grads in per_example) / 6
        assert torch.allclose(g, mean, rtol=1e-12, atol=1e-14)


def test_monte_carlo_risk_converges_to_the_integral():
    # P: X ~ N(0, 1), Y = X + σε with ε ~ N(0, 1); p(x) = a·x. Then
    # R_{L,P}(p) = E[(Y − aX)²] = (1 − a)² + σ² for the squared error (Def. 1.2.1).
    a, sigma = 0.4, 0.5

    def sampler(n, generator):
        x = torch.randn(n, 1, dtype=torch.float64, generator=generator)
        return x, x + sigma * torch.randn(n, 1, dtype=torch.float64, generator=generator)

    exact = (1 - a) ** 2 + sigma**2
    estimate, error = risk(squared_error, lambda x: a * x, sampler, n=40_000, generator=torch.Generator().manual_seed(5))
    assert abs(estimate.item() - exact) < 4 * error.item()
    assert error.item() < 0.01
    small, small_error = risk(squared_error, lambda x: a * x, sampler, n=400, generator=torch.Generator().manual_seed(5))
    assert small_error.item() > error.item()  # the error shrinks like 1/√n
    with pytest.raises(VaelabError):
        risk(squared_error, lambda x: a * x, sampler, n=1)
