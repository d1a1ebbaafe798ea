"""The model section of a run's config (``[model]`` in ``config.toml``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option


@dataclass
class ModelConfig:
    name: str = option("conv-vae", "registry name of the model (see `vaelab models`)")
    latent_dim: int = option(32, "size of the bottleneck n_b (Def. 2.1.7): latent dimensions", min=1, max=4096)
    hidden: list[int] = option([], "hidden widths (MLP) or channels per stage (conv); empty = the model's default", min=1)
    dense_width: int = option(256, "conv models: width of the dense layer between conv features and latent (0 = none)", min=0)
    activation: str = option("relu", "activation φ of every hidden layer (Def. 1.1.1): relu, leaky_relu, elu, gelu, tanh, sigmoid, softplus")
    likelihood: str = option("bernoulli", "pixel likelihood p(x|z): bernoulli (BCE from logits) or gaussian (MSE)", choices=("bernoulli", "gaussian"))
    sigma: float = option(0.1, "gaussian likelihood: fixed pixel noise σ (initial value when learned)", min=1e-4, max=10.0)
    learn_sigma: bool = option(False, "gaussian likelihood: learn one σ per channel instead of fixing it")
    beta: float = option(1.0, "weight β of the KL term: 1 is the VAE, other values the β-VAE", min=0.0)
    objective: str = option("", "training objective: elbo or iwae; empty = the model's own default")
    iw_samples: int = option(1, "samples K per image for the iwae objective", min=1, max=4096)
    rd_lambdas: list[float] = option([0.1, 0.3, 1.0, 3.0, 10.0], "conv-rd: distortion weights λ of loss = bits + λ·MSE (MSE in [0,255]² units), one per quality level", min=0.0, min_exclusive=True)
    latent_channels: int = option(32, "conv-rd: channels of its spatial latent (on the grid of the last conv stage)", min=1, max=1024)
    rd_context: int = option(0, "conv-rd: hidden channels of an autoregressive context model over the latent grid (Minnen et al. 2018); 0 = a factorised density", min=0, max=1024)
    rd_context_groups: int = option(1, "conv-rd with rd_context: send each grid position's channels in this many groups, each predicted also from the groups sent before it at that position (channel context)", min=1, max=64)
    rd_straight_through: bool = option(False, "conv-rd: in training the decoder sees rounded codes (gradient passed straight through) while the rate sees noisy ones (Minnen & Singh 2020)")
    rd_residual: int = option(0, "conv-rd: residual blocks (two 3×3 convolutions) after each encoder stage and before each decoder stage", min=0, max=8)
    ar_features: int = option(32, "pixel-vae: channels of the conditioning map and of the autoregressive head", min=1, max=512)
    ar_kernel: int = option(5, "pixel-vae: size of the first masked convolution (odd); how far back each pixel looks", min=3, max=15)
    ar_layers: int = option(2, "pixel-vae: masked layers of the autoregressive head (the first 'A', the rest 3×3 'B')", min=1, max=12)
