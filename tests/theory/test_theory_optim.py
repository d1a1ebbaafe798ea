"""Thm. 1.2.4, Cor. 1.2.6, Thm. 1.2.7, Adam and the step-size schedules."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.theory import (
    DenseNetwork,
    empirical_risk,
    gradient_descent,
    make_optimizer,
    make_scheduler,
    squared_error,
    step_size_schedule,
    stochastic_gradient_descent,
)


def _quadratic(n=5, seed=0):
    """f(x) = ½ xᵀAx − bᵀx with A symmetric positive definite (strictly convex), eigenvalues in [0.5, 4.5]."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g))
    eigenvalues = torch.linspace(0.5, 4.5, n, dtype=torch.float64)
    A = Q @ torch.diag(eigenvalues) @ Q.T
    b = torch.randn(n, dtype=torch.float64, generator=g)
    return A, b, (lambda x: 0.5 * x @ A @ x - b @ x)


def test_thm_1_2_4_gd_with_vanishing_steps_reaches_the_minimiser():
    A, b, f = _quadratic()
    x_star = torch.linalg.solve(A, b)
    L = torch.linalg.eigvalsh(A).max().item()
    gamma = lambda t: (1.0 / L) / (1.0 + t / 200.0)  # noqa: E731  γ_t → 0 with Σγ_t = ∞
    x0 = torch.full((5,), 3.0, dtype=torch.float64)
    result = gradient_descent(f, x0, gamma, steps=1500)
    assert torch.allclose(result.x, x_star, atol=1e-9)
    assert result.iterates.shape == (1501, 5) and torch.equal(result.iterates[0], x0)
    assert result.values[-1].item() == pytest.approx(f(x_star).item(), abs=1e-12)
    # the proof's picture: with γ_t ≤ 1/L every step moves closer to x*
    distances = (result.iterates - x_star).norm(dim=1)
    assert (distances[1:] <= distances[:-1] + 1e-15).all()


def test_summable_steps_can_stop_short_of_the_minimiser():
    # γ_t → 0 alone is not enough: with Σγ_t < ∞ the iterates travel a bounded distance
    A, b, f = _quadratic()
    x_star = torch.linalg.solve(A, b)
    x0 = x_star + 10.0
    result = gradient_descent(f, x0, lambda t: 0.05 * 0.5**t, steps=200)
    assert (result.x - x_star).norm() > 1.0


def test_gradient_descent_accepts_constant_and_listed_steps_and_refuses_bad_input():
    A, b, f = _quadratic(3)
    x0 = torch.zeros(3, dtype=torch.float64)
    assert torch.equal(gradient_descent(f, x0, 0.1, 4).x, gradient_descent(f, x0, [0.1] * 4, 4).x)
    one = gradient_descent(f, x0, 0.1, 1).x
    assert torch.allclose(one, x0 - 0.1 * (A @ x0 - b))  # eq. (1.5) with ∇f = Ax − b
    with pytest.raises(VaelabError, match="diverged"):
        gradient_descent(f, x0 + 1, 10.0, 400)
    with pytest.raises(VaelabError, match="single number"):
        gradient_descent(lambda x: x * 2, x0, 0.1, 1)
    with pytest.raises(VaelabError):
        gradient_descent(f, x0, [0.1], 3)


def _least_squares(k=40, d=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(k, d, dtype=torch.float64, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * torch.randn(k, dtype=torch.float64, generator=g)
    w_star = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    return X, y, w_star


def test_thm_1_2_7_sgd_one_example_per_step_approaches_the_minimiser():
    X, y, w_star = _least_squares()
    k = X.shape[0]

    def f_i(w, i):  # squared error of example(s) i
        return ((X[i] @ w - y[i]) ** 2).mean()

    minimum = f_i(w_star, torch.arange(k)).item()
    w0 = torch.zeros(3, dtype=torch.float64)
    result = stochastic_gradient_descent(
        f_i, k, w0, lambda t: 0.05 / (1 + t / 100), steps=2000, generator=torch.Generator().manual_seed(0)
    )
    start = (w0 - w_star).norm().item()
    assert (result.x - w_star).norm().item() < 0.05 * start
    assert result.values[-1].item() - minimum < 0.01 * (result.values[0].item() - minimum)
    assert result.values.shape == (2001,)


def _linear_regression_net(X, y):
    torch.manual_seed(3)
    net = DenseNetwork([X.shape[1], 1], output_activation=None).double()
    return net, y.unsqueeze(1)


def test_cor_1_2_6_gd_step_is_theta_minus_gamma_gradient():
    X, y, _ = _least_squares()
    net, Y = _linear_regression_net(X, y)
    gamma = 0.1
    before = [p.detach().clone() for pair in net.theta for p in pair]
    risk = empirical_risk(squared_error, net, X, Y)
    grads = torch.autograd.grad(risk, [p for pair in net.theta for p in pair])
    optimizer = make_optimizer("gd", net.parameters(), lr=gamma)
    optimizer.zero_grad()
    empirical_risk(squared_error, net, X, Y).backward()
    optimizer.step()
    after = [p.detach() for pair in net.theta for p in pair]
    for old, new, g in zip(before, after, grads):
        assert torch.allclose(new, old - gamma * g, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name, lr, batch", [("gd", 0.1, None), ("sgd", 0.05, 1), ("sgd", 0.1, 8), ("adam", 0.05, 8), ("adamw", 0.05, 8)])
def test_optimizers_train_a_network_towards_the_least_squares_solution(name, lr, batch):
    X, y, w_star = _least_squares()
    net, Y = _linear_regression_net(X, y)
    optimizer = make_optimizer(name, net.parameters(), lr=lr)
    scheduler = make_scheduler(optimizer, "inverse" if name in ("gd", "sgd") else "constant", time_scale=100.0)
    g = torch.Generator().manual_seed(4)
    k = X.shape[0]
    initial = empirical_risk(squared_error, net, X, Y).item()
    for _ in range(600):
        idx = slice(None) if batch is None else torch.randint(0, k, (batch,), generator=g)
        optimizer.zero_grad()
        empirical_risk(squared_error, net, X[idx], Y[idx]).backward()
        optimizer.step()
        scheduler.step()
    # the minimum with a bias term is at most that without one
    minimum = empirical_risk(squared_error, lambda x: x @ w_star.unsqueeze(1), X, Y).item()
    final = empirical_risk(squared_error, net, X, Y).item()
    assert final < minimum + 0.02 * (initial - minimum)


def test_adam_follows_the_documented_update_rule():
    torch.manual_seed(5)
    theta = torch.randn(4, dtype=torch.float64, requires_grad=True)
    target = torch.randn(4, dtype=torch.float64)
    f = lambda th: ((th - target) ** 4).sum()  # noqa: E731
    gamma, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    manual = theta.detach().clone()
    m = torch.zeros(4, dtype=torch.float64)
    v = torch.zeros(4, dtype=torch.float64)
    optimizer = make_optimizer("adam", [theta], lr=gamma)
    for t in range(1, 8):
        optimizer.zero_grad()
        f(theta).backward()
        optimizer.step()
        g = 4 * (manual - target) ** 3
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        manual = manual - gamma * m_hat / (v_hat.sqrt() + eps)
        assert torch.allclose(theta.detach(), manual, rtol=1e-12, atol=1e-14)


def test_make_optimizer_refuses_bad_requests():
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(VaelabError) as info:
        make_optimizer("rmsprop", params, lr=0.1)
    assert all(name in str(info.value) for name in ("gd", "sgd", "adam", "adamw"))
    with pytest.raises(VaelabError):
        make_optimizer("gd", params, lr=0.1, momentum=0.9)  # plain GD has no momentum
    with pytest.raises(VaelabError):
        make_optimizer("adam", params, lr=-1.0)
    with pytest.raises(VaelabError):
        make_optimizer("adam", params, lr=0.1, betas=(1.5, 0.9))
    with pytest.raises(VaelabError):
        make_optimizer("sgd", [], lr=0.1)
    sgd = make_optimizer("sgd", params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["weight_decay"] == 1e-4
    assert make_optimizer("SGD", params, lr=0.1).param_groups[0]["momentum"] == 0.0


def test_schedules_take_their_documented_values():
    g0 = 0.8
    constant = step_size_schedule("constant", g0)
    assert [constant(t) for t in (0, 5, 10**6)] == [g0] * 3
    inverse = step_size_schedule("inverse", g0)
    assert [inverse(t) for t in (0, 1, 3)] == pytest.approx([g0, g0 / 2, g0 / 4])
    assert step_size_schedule("inverse", g0, time_scale=10)(10) == pytest.approx(g0 / 2)
    inv_sqrt = step_size_schedule("inverse-sqrt", g0)
    assert [inv_sqrt(t) for t in (0, 1, 3)] == pytest.approx([g0, g0 / math.sqrt(2), g0 / 2])
    cosine = step_size_schedule("cosine", g0, total_steps=10)
    assert [cosine(t) for t in (0, 5, 10, 20)] == pytest.approx([g0, g0 / 2, 0.0, 0.0], abs=1e-15)
    warm = step_size_schedule("cosine", g0, total_steps=14, warmup_steps=4)
    assert [warm(t) for t in (0, 1, 3, 4, 9, 14)] == pytest.approx([g0 / 4, g0 / 2, g0, g0, g0 / 2, 0.0], abs=1e-15)
    warm_inverse = step_size_schedule("inverse", g0, warmup_steps=2)
    assert [warm_inverse(t) for t in (0, 1, 2, 3)] == pytest.approx([g0 / 2, g0, g0, g0 / 2])
    # the decaying ones satisfy γ_t → 0 (Thm. 1.2.4)
    for name in ("inverse", "inverse-sqrt"):
        assert step_size_schedule(name, g0)(10**8) < 1e-3 * g0


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("linear", 0.1), {}),
        (("cosine", 0.1), {}),
        (("cosine", 0.1, 5, 5), {}),
        (("constant", 0.0), {}),
        (("constant", 0.1, None, -1), {}),
        (("inverse", 0.1), {"time_scale": 0.0}),
    ],
)
def test_bad_schedules_are_refused(args, kwargs):
    with pytest.raises(VaelabError):
        step_size_schedule(*args, **kwargs)


def _run(net, optimizer, scheduler, steps, X, Y):
    lrs = []
    for _ in range(steps):
        optimizer.zero_grad()
        empirical_risk(squared_error, net, X, Y).backward()
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("name", ["gd", "adam"])
def test_scheduler_state_round_trips_through_json(name):
    X, y, _ = _least_squares()
    net, Y = _linear_regression_net(X, y)
    saved_net = None

    def build(model):
        optimizer = make_optimizer(name, model.parameters(), lr=0.05)
        return optimizer, make_scheduler(optimizer, "cosine", total_steps=12, warmup_steps=3)

    optimizer, scheduler = build(net)
    _run(net, optimizer, scheduler, 5, X, Y)
    saved_net = copy.deepcopy(net.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_scheduler = json.loads(json.dumps(scheduler.state_dict()))  # numbers only
    uninterrupted = _run(net, optimizer, scheduler, 7, X, Y)

    resumed_net, _ = _linear_regression_net(X, y)
    resumed_net.load_state_dict(saved_net)
    optimizer2, scheduler2 = build(resumed_net)
    optimizer2.load_state_dict(saved_optimizer)
    scheduler2.load_state_dict(saved_scheduler)
    assert _run(resumed_net, optimizer2, scheduler2, 7, X, Y) == uninterrupted
    assert uninterrupted[-1] == 0.0  # the cosine reached 0 at total_steps
    for a, b in zip(resumed_net.parameters(), net.parameters()):
        assert torch.equal(a, b)
