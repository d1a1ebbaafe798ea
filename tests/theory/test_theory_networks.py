"""Defs. 1.1.3–1.1.6, Remark 1.1.5, Defs. 2.1.4–2.1.7, Lemma 2.1.6 against literal loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.theory import Autoencoder, Decoder, DenseLayer, DenseNetwork, Encoder, Neuron, compose


def _leaky(t, alpha=0.01):
    return alpha * t if t <= 0 else t


def _loop_network(network, x, phis):
    """Eq. (1.3) from Defs. 1.1.3/1.1.4: layer by layer, neuron by neuron, in plain Python."""
    out = []
    for row in x.tolist():
        h = row
        for (W, b), phi in zip(network.theta, phis):
            W, b = W.tolist(), b.tolist()
            h = [phi(sum(W[i][j] * h[j] for j in range(len(h))) + b[i]) for i in range(len(b))]
        out.append(h)
    return out


def test_dense_network_equals_literal_loop():
    torch.manual_seed(0)
    net = DenseNetwork("5-4-3-2", activation="leaky_relu:0.1").double()
    x = torch.randn(6, 5, dtype=torch.float64) * 3
    expected = _loop_network(net, x, [lambda t: _leaky(t, 0.1)] * 3)
    assert net(x).tolist() == pytest.approx([pytest.approx(r, rel=1e-12, abs=1e-12) for r in expected])


def test_affine_output_layer_and_other_output_activation():
    torch.manual_seed(1)
    x = torch.randn(4, 3, dtype=torch.float64)
    affine = DenseNetwork([3, 4, 2], activation="relu", output_activation=None).double()
    expected = _loop_network(affine, x, [lambda t: max(0.0, t), lambda t: t])
    assert np.allclose(affine(x).tolist(), expected, rtol=1e-12, atol=1e-12)
    assert isinstance(affine.layers[-1].activation, torch.nn.Identity)
    same = DenseNetwork([3, 4, 2], activation="tanh", output_activation="identity").double()
    assert np.allclose(same(x).tolist(), _loop_network(same, x, [math.tanh, lambda t: t]), rtol=1e-12, atol=1e-12)
    sig = DenseNetwork([3, 4, 2], activation="relu", output_activation="sigmoid").double()
    expected = _loop_network(sig, x, [lambda t: max(0.0, t), lambda t: 1 / (1 + math.exp(-t))])
    assert np.allclose(sig(x).tolist(), expected, rtol=1e-12, atol=1e-12)


def test_neuron_is_phi_of_inner_product_plus_bias():
    torch.manual_seed(2)
    neuron = Neuron(4, activation="sigmoid").double()
    x = torch.randn(5, 4, dtype=torch.float64)
    w, b = neuron.theta
    expected = [1 / (1 + math.exp(-(sum(wj * xj for wj, xj in zip(w.tolist(), row)) + b.item()))) for row in x.tolist()]
    assert neuron(x).tolist() == pytest.approx(expected, rel=1e-12)
    assert neuron(x[0]).shape == ()


def test_layer_components_are_neurons_sharing_parameters():
    torch.manual_seed(3)
    layer = DenseLayer(4, 3, activation="relu").double()
    x = torch.randn(5, 4, dtype=torch.float64)
    assert layer.W.shape == (3, 4) and layer.b.shape == (3,)
    assert layer.theta[0] is layer.W and layer.theta[1] is layer.b
    for i in range(3):
        h_i = layer.neuron(i)
        assert torch.allclose(h_i(x), layer(x)[:, i])
        assert torch.equal(h_i.w, layer.W[i]) and h_i.b.item() == layer.b[i].item()  # w_i = Wᵀe_i, b_i = <b, e_i>
    h1 = layer.neuron(1)
    with torch.no_grad():
        layer.W[1, 2] += 5.0  # editing the layer edits the neuron
    assert h1.w[2].item() == layer.W[1, 2].item()
    h1(x).sum().backward()
    assert layer.W.grad is not None and torch.count_nonzero(layer.W.grad[[0, 2]]) == 0
    assert {id(p) for p in h1.parameters()} == {id(layer.W), id(layer.b)}
    with pytest.raises(VaelabError):
        layer.neuron(3)


def test_theta_structure_and_live_parameters():
    torch.manual_seed(4)
    net = DenseNetwork("6-5-4-3")
    assert net.depth == 3 and net.widths == (6, 5, 4, 3)
    assert len(net.theta) == 3
    for i, (W, b) in enumerate(net.theta):
        assert W.shape == (net.widths[i + 1], net.widths[i]) and b.shape == (net.widths[i + 1],)
        assert W is net.layers[i].W and b is net.layers[i].b
    x = torch.randn(2, 6)
    before = net(x)
    with torch.no_grad():
        net.theta[2][1].add_(1.0)  # the last bias; ReLU output of positive shift changes
    assert not torch.equal(before, net(x))
    assert net.theta[0][0] is net.theta[0][0]


def test_depth_of_784_400_20_is_two():
    net = DenseNetwork("784-400-20")
    assert net.depth == 2
    assert (net.in_features, net.out_features) == (784, 20)
    assert DenseNetwork.parse_widths("784 - 400 - 20") == (784, 400, 20)
    assert DenseNetwork.parse_widths("784,400,20") == (784, 400, 20)
    assert DenseNetwork.parse_widths([np.int64(3), 2]) == (3, 2)


@pytest.mark.parametrize("widths", ["784-abc-20", "784", "", "784-0-2", "784--400", "-5-3", "7.5-2", [784, 4.0], [3, True], 5, [], [3, -1]])
def test_bad_width_lists_are_refused(widths):
    with pytest.raises(VaelabError):
        DenseNetwork(widths)


def test_images_are_flattened_row_major():
    torch.manual_seed(5)
    net = DenseNetwork("12-3", activation="tanh")
    x = torch.randn(2, 1, 3, 4)
    rows_stacked = torch.stack([torch.cat([img[0, i] for i in range(3)]) for img in x])  # Lemma 1.3.3
    assert torch.equal(net(x), net(rows_stacked))
    assert net(rows_stacked[0]).shape == (3,)
    with pytest.raises(VaelabError, match="dimension 12"):
        net(torch.randn(2, 1, 3, 3))
    with pytest.raises(VaelabError):
        net(torch.randn(2, 11))


def test_encoder_refuses_increasing_widths():
    assert Encoder("784-400-400-20").widths == (784, 400, 400, 20)
    with pytest.raises(VaelabError, match="400 → 500 at layer 2") as info:
        Encoder("784-400-500-20")
    assert "Def. 2.1.4" in str(info.value)
    with pytest.raises(VaelabError, match="2 → 3 at layer 1"):
        Encoder([2, 3])


def test_decoder_refuses_decreasing_widths():
    assert Decoder("2-8-8-16").widths == (2, 8, 8, 16)
    with pytest.raises(VaelabError, match="8 → 4 at layer 2") as info:
        Decoder("2-8-4")
    assert "Def. 2.1.5" in str(info.value)


def test_compose_is_a_network_of_depth_l1_plus_l2():
    torch.manual_seed(6)
    f1 = DenseNetwork("6-4-3", activation="relu")
    f2 = DenseNetwork("3-5-2", activation="tanh", output_activation=None)
    f = compose(f1, f2)
    assert isinstance(f, DenseNetwork)
    assert f.depth == f1.depth + f2.depth == 4
    assert f.widths == (6, 4, 3, 5, 2)
    assert f.theta == f1.theta + f2.theta
    assert all(a is b for pair_f, pair_g in zip(f.theta, f1.theta + f2.theta) for a, b in zip(pair_f, pair_g))
    x = torch.randn(7, 6)
    assert torch.equal(f(x), f2(f1(x)))
    # each part keeps its own activations: ReLU inside f1, tanh then affine inside f2
    assert [type(layer.activation).__name__ for layer in f.layers] == ["ReLU", "ReLU", "Tanh", "Identity"]
    with pytest.raises(VaelabError, match="Lemma 2.1.6"):
        compose(f2, f1)


def test_autoencoder_is_decoder_after_encoder():
    torch.manual_seed(7)
    encoder = Encoder("64-32-8", output_activation=None)
    decoder = Decoder("8-32-64", output_activation="sigmoid")
    ae = Autoencoder(encoder, decoder)
    assert ae.bottleneck == 8 and ae.depth == 4
    assert ae.theta == encoder.theta + decoder.theta
    x = torch.rand(5, 64)
    assert torch.equal(ae(x), decoder(encoder(x)))
    assert torch.equal(ae.encode(x), encoder(x)) and torch.equal(ae.decode(ae.encode(x)), ae(x))
    images = torch.rand(5, 1, 8, 8)
    assert ae(images).shape == images.shape
    assert torch.equal(ae(images).reshape(5, 64), ae(images.reshape(5, 64)))
    symmetric = Autoencoder.from_widths("64-32-8")
    assert symmetric.encoder.widths == (64, 32, 8) and symmetric.decoder.widths == (8, 32, 64)


def test_autoencoder_refuses_mismatched_parts():
    with pytest.raises(VaelabError, match="bottleneck"):
        Autoencoder(Encoder("64-8"), Decoder("4-64"))
    with pytest.raises(VaelabError, match="R\\^n_i"):
        Autoencoder(Encoder("64-8"), Decoder("8-32"))
    with pytest.raises(VaelabError, match="must not increase"):
        Autoencoder(DenseNetwork("8-16-4"), Decoder("4-8"))
    with pytest.raises(VaelabError):
        Autoencoder(torch.nn.Linear(3, 2), Decoder("2-3"))


def test_the_thesis_figures_as_width_lists():
    # Fig. 1.1: input 4, hidden 3, 4, 5, 3, 7, output 2 — six layers
    fig_1_1 = DenseNetwork("4-3-4-5-3-7-2")
    assert fig_1_1.depth == 6 and fig_1_1(torch.zeros(1, 4)).shape == (1, 2)
    # Figs. 2.2, 2.3, 2.1: encoder 5-4-3-2, decoder 2-3-4-5, and the autoencoder with bottleneck 2
    encoder, decoder = Encoder("5-4-3-2"), Decoder("2-3-4-5")
    ae = Autoencoder(encoder, decoder)
    assert ae.bottleneck == 2 and ae.depth == 6
    assert compose(encoder, decoder).widths == (5, 4, 3, 2, 3, 4, 5)
