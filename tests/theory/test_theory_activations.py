"""Def. 1.1.1 and Ex. 1.1.2: activation functions against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vaelab.errors import VaelabError
from vaelab.theory import ACTIVATIONS, Activation, get_activation, leaky_relu, relu, sigmoid

POINTS = [-7.5, -2.0, -1e-3, 0.0, 1e-3, 0.5, 3.0, 12.0]


def _apply(fn, points=POINTS):
    return fn(torch.tensor(points, dtype=torch.float64)).tolist()


def test_relu_equals_formula():
    expected = [max(0.0, t) for t in POINTS]
    assert _apply(relu) == pytest.approx(expected, abs=0)
    assert _apply(get_activation("relu")) == pytest.approx(expected, abs=0)


@pytest.mark.parametrize("alpha", [0.01, 0.2, -0.5, 1.5])
def test_leaky_relu_equals_formula(alpha):
    expected = [alpha * t if t <= 0 else t for t in POINTS]
    assert _apply(lambda t: leaky_relu(t, alpha)) == pytest.approx(expected, rel=1e-15, abs=0)
    assert _apply(get_activation(f"leaky_relu:{alpha}")) == pytest.approx(expected, rel=1e-15, abs=0)
    assert _apply(get_activation("leaky-relu", alpha=alpha)) == pytest.approx(expected, rel=1e-15, abs=0)


def test_leaky_relu_default_slope_is_one_hundredth():
    assert _apply(get_activation("leaky_relu"), [-2.0]) == pytest.approx([-0.02])
    assert _apply(leaky_relu, [-2.0]) == pytest.approx([-0.02])


def test_sigmoid_equals_formula():
    expected = [1.0 / (1.0 + math.exp(-t)) for t in POINTS]
    assert _apply(sigmoid) == pytest.approx(expected, rel=1e-12)
    assert _apply(get_activation("Sigmoid")) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "name, formula",
    [
        ("tanh", math.tanh),
        ("elu", lambda t: t if t > 0 else math.expm1(t)),
        ("elu:0.5", lambda t: t if t > 0 else 0.5 * math.expm1(t)),
        ("gelu", lambda t: 0.5 * t * (1.0 + math.erf(t / math.sqrt(2.0)))),
        ("softplus", lambda t: math.log1p(math.exp(t))),
        ("softplus:2", lambda t: math.log1p(math.exp(2 * t)) / 2),
        ("identity", lambda t: t),
    ],
)
def test_practical_activations_equal_formulas(name, formula):
    assert _apply(get_activation(name)) == pytest.approx([formula(t) for t in POINTS], rel=1e-10, abs=1e-12)


def test_every_listed_name_builds_a_module():
    for name in ACTIVATIONS:
        assert isinstance(get_activation(name), nn.Module)


def test_unknown_name_lists_the_choices():
    with pytest.raises(VaelabError) as info:
        get_activation("swishy")
    message = str(info.value)
    assert "swishy" in message
    for name in ACTIVATIONS:
        assert name in message


@pytest.mark.parametrize(
    "spec, kwargs",
    [("leaky_relu:abc", {}), ("leaky_relu:nan", {}), ("relu:0.3", {}), ("relu", {"alpha": 0.1}), ("leaky_relu", {"beta": 1.0}),
     ("leaky_relu:0.1", {"alpha": 0.2}), ("softplus:-1", {})],
)
def test_bad_parameters_are_refused(spec, kwargs):
    with pytest.raises(VaelabError):
        get_activation(spec, **kwargs)


def test_user_callables_are_accepted_and_applied():
    cube = get_activation(lambda t: t**3 - t)
    assert isinstance(cube, Activation)
    assert _apply(cube) == pytest.approx([t**3 - t for t in POINTS], rel=1e-12)
    steep = get_activation(lambda t: torch.tanh(50 * t))  # continuous, though steep
    assert _apply(steep, [0.01]) == pytest.approx([math.tanh(0.5)])
    assert get_activation(torch.sin)(torch.tensor([0.0])).item() == 0.0


def test_user_module_keeps_its_parameters():
    prelu = nn.PReLU()
    act = get_activation(prelu)
    assert [p is prelu.weight for p in act.parameters()] == [True]
    assert get_activation(act) is act


def test_float32_only_callables_are_probed_in_float32():
    def only_float32(t):
        if t.dtype != torch.float32:
            raise TypeError("float32 only")
        return torch.relu(t)

    assert get_activation(only_float32)(torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: torch.zeros_like(t),
        lambda t: t * 0 + 3.0,
        lambda t: torch.relu(t - 1e5),  # constant on every probe point up to 1e4
    ],
)
def test_constant_functions_are_refused(fn):
    with pytest.raises(VaelabError, match="constant"):
        Activation(fn)


@pytest.mark.parametrize("fn", [lambda t: (t > 0.3).to(t.dtype), torch.sign, torch.round, lambda t: t + (t > -2.7).to(t.dtype)])
def test_jumps_are_refused(fn):
    with pytest.raises(VaelabError, match="jump"):
        Activation(fn)


@pytest.mark.parametrize(
    "fn, pattern",
    [
        (torch.log, "finite"),
        (lambda t: torch.softmax(t, dim=-1), "entry"),
        (lambda t: t.sum(), "entry by entry"),
        (lambda t: t.tolist(), "tensor"),
        (lambda t: 1 / 0, "failed"),
    ],
)
def test_non_functions_of_one_real_are_refused(fn, pattern):
    with pytest.raises(VaelabError, match=pattern):
        Activation(fn)


def test_non_callables_are_refused():
    with pytest.raises(VaelabError):
        get_activation(3.0)
