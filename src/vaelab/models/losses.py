"""Training objectives, in one place and outside the models (DESIGN.md §2).

A model's ``forward(x)`` returns an :class:`~vaelab.models.outputs.Output`; a loss turns that
output and the batch into per-image terms. Each loss carries its own weights:

    ELBO(β)            loss = −log p(x|z) + β·w·KL(q(z|x) ‖ p(z))          (Def. 3.1.1; β ≠ 1: β-VAE)
    IWAE(K)            loss = −log (1/K) Σ_k p(x, z_k)/q(z_k|x)              (Burda et al. 2015)
    RateDistortion()   loss = w·rate + λ·distortion                         (Ballé et al. 2017)
    BetaTCVAE(β)       the ELBO with β on the total correlation alone        (Chen et al. 2018)
    FactorVAELoss(γ)   the ELBO + γ·TC, TC from a discriminator              (Kim & Mnih 2018)
    VQELBO(β)          −log p(x|z_q) − log p_prior(k) + β·commitment         (van den Oord et al. 2017)
    ConditionalELBO    −ELBO of log p(x|y) + α·cross-entropy of q(y|x)       (Sohn et al. 2015; M2)

with w ∈ [0, 1] the warm-up weight the training engine anneals (:func:`kl_warmup_weight`).
For a plain autoencoder the ELBO's KL is 0 and the loss is the reconstruction term, the
thesis' BCE/MSE (Ex. 2.1.2) summed over pixels. Every term is per image, in nats (the rate in
bits, the distortion in [0, 255]² units).

Which loss trains a model is the model config's choice (``config.loss()``); the engine only
calls ``loss(model(x, **loss.forward_options), x, w)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..distributions import LOG_2PI, DiagonalGaussian, discrete_log_prob
from ..errors import VaelabError
from ..metrics import psnr_from_mse
from .outputs import LabelledOutput, Output, VQOutput


@dataclass
class LossTerms:
    """What a loss returns: the minimised ``loss`` and named ``parts``, each (B,) per image."""

    loss: torch.Tensor
    parts: dict[str, torch.Tensor]

    def __getattr__(self, name: str) -> torch.Tensor:
        # terms.kl, terms.rate, …: a part by its name
        parts = self.__dict__.get("parts") or {}
        if name in parts:
            return parts[name]
        raise AttributeError(name)

    @property
    def negative_elbo(self) -> torch.Tensor:
        """−ELBO = reconstruction + KL (for the ELBO-type losses)."""
        return self.parts["reconstruction"] + self.parts["kl"]

    def means(self) -> dict[str, torch.Tensor]:
        """Batch means as 0-d tensors (no host synchronisation until someone reads them)."""
        return {"loss": self.loss.mean(), **{name: value.mean() for name, value in self.parts.items()}}


def kl_warmup_weight(step: int, warmup_steps: int) -> float:
    """The warm-up weight w at optimisation step ``step`` (0-based): (step + 1)/S up to 1, or 1 when S = 0.

    The engine multiplies the KL term (a rate–distortion model's rate) by it, so a model first
    learns to reconstruct before the prior pulls its codes together (Bowman et al. 2016).
    """
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


class Loss:
    """Base of the objectives: ``terms = loss(output, x, kl_weight)``."""

    parts: tuple[str, ...] = ()        # names of the per-image terms reported besides the loss
    name = ""
    # The validation number that picks the best epoch (and drives early stopping): the loss itself,
    # unless part of it is an estimate too noisy to rank epochs by (FactorVAE's adversarial TC).
    selection = "loss"

    @property
    def forward_options(self) -> dict:
        """Keyword arguments of ``model(x, **options)`` that this loss needs (IWAE: K samples)."""
        return {}

    def prepare(self, train_images: int) -> None:
        """Told the training set's size before training (β-TCVAE's estimator needs it)."""

    def __call__(self, output: Output, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        raise NotImplementedError

    def report(self, terms: LossTerms) -> dict[str, torch.Tensor]:
        """Per-image numbers to log and evaluate: the parts, and what they add up to."""
        return dict(terms.parts)

    # A loss may train a second set of parameters (``model.auxiliary_parameters()``, such as
    # FactorVAE's discriminator) with its own optimiser: the engine keeps them out of the main
    # optimiser and, after each main step, minimises ``auxiliary_loss`` with this optimiser.
    def auxiliary_optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer | None:
        """The optimiser of the model's auxiliary parameters; None: this loss trains none."""
        return None

    def auxiliary_loss(self, model, x: torch.Tensor) -> torch.Tensor:
        """The scalar the auxiliary optimiser minimises on the batch ``x`` (after the main step)."""
        raise NotImplementedError(f"{type(self).__name__} trains no auxiliary parameters")


class ELBOFamily(Loss):
    """Losses whose parts are the ELBO's (reconstruction, KL): they also report the −ELBO."""

    def report(self, terms: LossTerms) -> dict[str, torch.Tensor]:
        return {"neg_elbo": terms.negative_elbo, **terms.parts}


def kl_divergence(posterior: DiagonalGaussian, prior, z: torch.Tensor | None = None) -> torch.Tensor:
    """KL(q(z|x) ‖ p(z)) per image (B,).

    Closed form (Def. 3.1.1) when the prior is a diagonal Gaussian (None: N(0, I)); for any other
    prior (a mixture) the Monte Carlo estimate log q(z|x) − log p(z) with the latents ``z`` drawn
    from q — (B, D), or K per image (K, B, D), averaged over the K.
    """
    if prior is None or isinstance(prior, DiagonalGaussian):
        return posterior.kl(prior)
    if hasattr(posterior, "kl_to"):        # a structured posterior that knows its KL (models/hvae.py)
        return posterior.kl_to(prior, z)
    estimate = posterior.log_prob(z) - prior.log_prob(z)
    return estimate.mean(0) if z.dim() == 3 else estimate


def kl_per_dimension(posterior: DiagonalGaussian, prior, z: torch.Tensor | None = None) -> torch.Tensor:
    """(B, D) KL per latent dimension: closed form for a diagonal Gaussian prior; for a mixture the
    one-sample estimate against its marginals (a mixture does not factorise, so these are a
    picture of where the information is, and need not add up to the joint KL)."""
    if prior is None or isinstance(prior, DiagonalGaussian):
        return posterior.kl_per_dim(prior)
    if hasattr(posterior, "kl_per_dim_to"):
        return posterior.kl_per_dim_to(prior, z)
    return posterior.log_prob_per_dim(z) - prior.log_prob_per_dim(z)


def kl_term(output: Output) -> torch.Tensor:
    """KL(q‖p) per image of a model's output (0 for plain autoencoders): :func:`kl_divergence`."""
    if output.posterior is None:
        return torch.zeros(output.z.shape[0], device=output.z.device)
    return kl_divergence(output.posterior, output.prior, output.z)


def elbo(output: Output, x: torch.Tensor, beta: float = 1.0) -> LossTerms:
    """Negative ELBO terms for one posterior sample (for an AE: the reconstruction loss)."""
    reconstruction = -output.likelihood.log_prob(x)
    kl = kl_term(output).float()
    return LossTerms(loss=reconstruction + beta * kl, parts={"reconstruction": reconstruction, "kl": kl})


class ELBO(ELBOFamily):
    """The negative evidence lower bound with the KL weighted by β (β = 1: the VAE's ELBO)."""

    name = "elbo"
    parts = ("reconstruction", "kl")

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def __call__(self, output: Output, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        return elbo(output, x, beta=self.beta * kl_weight)

    def __repr__(self) -> str:
        return f"ELBO(beta={self.beta:g})"


def total_correlation(posterior: DiagonalGaussian, z: torch.Tensor, dataset_size: int = 1) -> torch.Tensor:
    """(B,) total correlation log q(z) − log Π_d q(z_d) of the aggregate posterior at each image's
    sample, by minibatch-weighted sampling (Chen et al. 2018, §C.1):

        log q(z_i) ≈ log Σ_j q(z_i | x_j) − log(N·B),   the same per dimension for q(z_{i,d}),

    with N the training set's size and B the batch's. (The −log(N·B) terms change the value,
    not the gradient.)
    """
    B = z.shape[0]
    pair = -0.5 * ((z[:, None, :] - posterior.mean[None]) ** 2 / posterior.var[None]
                   + posterior.logvar[None] + LOG_2PI)                               # (B, B, D): log q(z_i,d | x_j)
    norm = math.log(B * max(dataset_size, 1))
    log_qz = torch.logsumexp(pair.sum(2), dim=1) - norm
    log_qz_product = (torch.logsumexp(pair, dim=1) - norm).sum(1)
    return log_qz - log_qz_product


def elbo_with_total_correlation(output: Output, x: torch.Tensor, tc: torch.Tensor, tc_weight: float,
                                 kl_weight: float = 1.0) -> LossTerms:
    """−ELBO with a total-correlation estimate ``tc`` (B,) weighted extra, parts reported:

        loss = reconstruction + w·(KL + tc_weight·TC)

    β-TCVAE's weight is β − 1 (its TC is already inside the KL once), FactorVAE's γ.
    """
    reconstruction = -output.likelihood.log_prob(x)
    kl = kl_term(output).float()
    tc = tc.float()
    loss = reconstruction + kl_weight * (kl + tc_weight * tc)
    return LossTerms(loss=loss, parts={"reconstruction": reconstruction, "kl": kl, "tc": tc})


class BetaTCVAE(ELBOFamily):
    """−ELBO with the total correlation weighted extra (β-TCVAE, Chen et al. 2018):

        loss = reconstruction + w·(KL + (β − 1)·TC)

    Of the KL's three parts (index-code mutual information, total correlation, dimension-wise
    KL) only the total correlation — the dependence between latent dimensions — is weighted by
    β, which is what disentangles, without the β-VAE's cost in reconstruction.
    """

    name = "tcvae"
    parts = ("reconstruction", "kl", "tc")

    def __init__(self, beta: float = 6.0):
        self.beta = float(beta)
        self.dataset_size = 1

    def prepare(self, train_images: int) -> None:
        self.dataset_size = int(train_images)

    def __call__(self, output: Output, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        tc = total_correlation(output.posterior, output.z, self.dataset_size)
        return elbo_with_total_correlation(output, x, tc, self.beta - 1.0, kl_weight)

    def __repr__(self) -> str:
        return f"BetaTCVAE(beta={self.beta:g}, dataset_size={self.dataset_size})"


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, D) latents with each dimension shuffled across the batch by its own permutation
    (Kim & Mnih 2018, Alg. 2): every column keeps its values, so the marginals q(z_d) stay, while
    the link between the dimensions is broken, so the rows are draws from Π_d q(z_d).
    """
    B, D = z.shape
    order = torch.rand(B, D, generator=generator, device=z.device).argsort(dim=0)   # a permutation per column
    return z.gather(0, order)


def density_ratio_tc(logits: torch.Tensor) -> torch.Tensor:
    """(…,) total correlation at each latent from a discriminator's (…, 2) logits (Kim & Mnih 2018, eq. 3):

        TC ≈ log D(z)/(1 − D(z)) = logit₀ − logit₁,

    with D(z) = softmax(logits)₀ the probability that z came from q(z) rather than Π_d q(z_d):
    at the optimal discriminator this is log q(z) − log Π_d q(z_d), whose mean over q is the TC.
    """
    return logits[..., 0] - logits[..., 1]


def discriminator_loss(real_logits: torch.Tensor, permuted_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of telling samples of q(z) (class 0) from permuted ones (class 1), each half weighted ½
    (Kim & Mnih 2018, Alg. 2: the discriminator ascends ½·E[log D(z)] + ½·E[log(1 − D(z̃))])."""
    real = torch.zeros(real_logits.shape[0], dtype=torch.long, device=real_logits.device)
    permuted = torch.ones(permuted_logits.shape[0], dtype=torch.long, device=permuted_logits.device)
    return 0.5 * (F.cross_entropy(real_logits, real) + F.cross_entropy(permuted_logits, permuted))


class FactorVAELoss(ELBOFamily):
    """−ELBO plus γ times the total correlation a discriminator estimates (FactorVAE, Kim & Mnih 2018, eq. 2):

        loss = reconstruction + w·(KL + γ·TC),   TC ≈ logit₀(z) − logit₁(z)

    The model's forward puts the discriminator's logits at its latent in the Output (with the
    discriminator's weights held fixed there, so this loss moves only the VAE). The
    discriminator itself is the auxiliary set: Adam with the paper's β = (0.5, 0.9) minimises
    :func:`discriminator_loss` on a fresh draw z ~ q(z|x) of the same batch against
    ``permute_dims`` of it. (The paper draws the permuted samples from a second batch; one
    batch keeps the engine's one-batch-per-step loop, and the permutation alone already
    makes the rows draws from Π_d q(z_d).)
    """

    # the discriminator's TC estimate swung between −0.9 and +0.6 nats from epoch to epoch on
    # shapes, and ranking epochs by the loss with γ = 40 times it kept epoch 3 of 5
    selection = "neg_elbo"

    name = "factor-vae"
    parts = ("reconstruction", "kl", "tc")
    betas = (0.5, 0.9)      # the discriminator's Adam (Kim & Mnih 2018, §4)

    def __init__(self, gamma: float = 6.4, discriminator_lr: float = 1e-4):
        self.gamma = float(gamma)
        self.discriminator_lr = float(discriminator_lr)

    def __call__(self, output: Output, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        tc = density_ratio_tc(output.discriminator_logits)
        return elbo_with_total_correlation(output, x, tc, self.gamma, kl_weight)

    def auxiliary_optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        from ..theory import make_optimizer

        return make_optimizer("adam", params, self.discriminator_lr, betas=self.betas)

    def auxiliary_loss(self, model, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on z ~ q(z|x) (the encoder held fixed) against its permutation."""
        with torch.no_grad():
            z = model.encode(x).sample()
        return discriminator_loss(model.discriminator(z), model.discriminator(permute_dims(z)))

    def __repr__(self) -> str:
        return f"FactorVAELoss(gamma={self.gamma:g}, discriminator_lr={self.discriminator_lr:g})"


def log_weights(output: Output, x: torch.Tensor, discrete: bool = False) -> torch.Tensor:
    """(K, B) importance log-weights log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x).

    ``output`` holds K latents per image (``output.z`` (K, B, D), the likelihood decoded from
    them, the posterior and the prior). ``discrete``: score 8-bit images by their probability
    (a Gaussian decoder's mass on each pixel's bin), as evaluation does. The one place the
    IWAE bound's weights are computed: training (:class:`IWAE`), evaluation and the apps.
    """
    log_px_z = discrete_log_prob(output.likelihood, x) if discrete else output.likelihood.log_prob(x)
    return log_px_z + output.prior.log_prob(output.z) - output.posterior.log_prob(output.z)


def iwae(output: Output, x: torch.Tensor) -> LossTerms:
    """Negative IWAE bound −log (1/K) Σ_k w_k per image from an output with K latents; K = 1 is the ELBO."""
    k = output.z.shape[0]
    bound = torch.logsumexp(log_weights(output, x), dim=0) - math.log(k)
    kl = kl_divergence(output.posterior, output.prior, output.z)
    # The split into reconstruction and KL is reported for the logs; the bound is what trains.
    return LossTerms(loss=-bound, parts={"reconstruction": -bound - kl, "kl": kl})


class IWAE(ELBOFamily):
    """The importance-weighted bound with K samples per image (Burda et al. 2015); no warm-up."""

    name = "iwae"
    parts = ("reconstruction", "kl")

    def __init__(self, samples: int):
        self.samples = int(samples)

    @property
    def forward_options(self) -> dict:
        return {"samples": self.samples}

    def __call__(self, output: Output, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        return iwae(output, x)

    def __repr__(self) -> str:
        return f"IWAE(samples={self.samples})"


def distortion(x_mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared error in [0, 255]² units between decoded means and images in [0, 1].

    PSNR = 10·log₁₀(255²/distortion). The codec prices codes with this very function.
    """
    return (255.0 * (x_mean - x)).pow(2).flatten(1).mean(1)


class RateDistortion(Loss):
    """rate + λ·distortion per image (Ballé et al. 2017), λ the level each image was coded at.

    The model's output carries the rate (``rate_bits``: −log₂ of the code's probability, noisy
    in training, rounded in evaluation) and each image's λ; the warm-up weight multiplies the rate.
    """

    name = "rate-distortion"
    parts = ("rate", "distortion")

    def __call__(self, output: Output, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        dist = distortion(output.likelihood.mean, x)
        loss = kl_weight * output.rate_bits + output.lmbda * dist
        return LossTerms(loss=loss, parts={"rate": output.rate_bits, "distortion": dist})

    def report(self, terms: LossTerms) -> dict[str, torch.Tensor]:
        """The rate and distortion, and each image's PSNR (what a codec's user reads)."""
        return {**terms.parts, "psnr_db": psnr_from_mse(terms.parts["distortion"].double(), 255.0)}

    def __repr__(self) -> str:
        return "RateDistortion()"


class VQELBO(ELBOFamily):
    """−ELBO = −log p(x|z_q) − log p_prior(k), plus β·commitment for training (van den Oord et al. 2017, eq. 3).

    ``kl`` is the prior's NLL (KL of the one-hot posterior); its gradient reaches only the prior.
    The warm-up weight is not applied to it: the encoder never sees that term's gradient, so
    annealing it would only slow the prior down.
    """

    name = "vq-elbo"
    parts = ("reconstruction", "kl", "commitment")

    def __init__(self, commitment: float = 0.25):
        self.commitment = float(commitment)

    def __call__(self, output: VQOutput, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        reconstruction = -output.likelihood.log_prob(x)
        kl = output.prior_nll.float()
        commitment = (output.z_e - output.z_q.detach()).pow(2).flatten(1).sum(1).float()   # ‖z_e − sg(z_q)‖²
        return LossTerms(loss=reconstruction + kl + self.commitment * commitment,
                         parts={"reconstruction": reconstruction, "kl": kl, "commitment": commitment})

    def __repr__(self) -> str:
        return f"VQELBO(commitment={self.commitment:g})"


class ConditionalELBO(ELBOFamily):
    """−ELBO of log p(x|y) with the KL weighted by β, plus α times the classifier's cross-entropy.

    ``accuracy`` (1 where argmax q(y|x) is the label) is reported beside the loss, not trained on.

    Images whose label is −1 (``semi_supervised`` training) get M2's bound on −log p(x) instead
    (Kingma et al. 2014, eq. 7), the label summed out under the classifier:

        Σ_y q(y|x) [−log p(x|z_y, y) + β·w·KL(q(z|x, y) ‖ N(0, I))] − H(q(y|x)),

    both this and the labelled images' term leaving out the constant log C = −log p(y). Their
    reconstruction and KL are the q(y|x)-weighted ones; the classification and accuracy parts
    are 0 for them, and the extra part ``labelled`` (1 or 0 per image) says which rows count:
    the labelled images' accuracy is mean(accuracy) / mean(labelled). Kingma et al. weight the
    cross-entropy with 0.1·N over the labelled set's mean — α = 0.1·N / N_labelled per image here;
    α = N / N_labelled (the labelled mean weighing as one image's bound) learned the classifier far
    faster on 100 MNIST labels (benchmarks/semi_supervised.py).
    """

    name = "conditional-elbo"
    parts = ("reconstruction", "kl", "classification", "accuracy")

    def __init__(self, beta: float = 1.0, alpha: float = 1.0, semi_supervised: bool = False):
        self.beta, self.alpha = float(beta), float(alpha)
        self.semi_supervised = bool(semi_supervised)
        if self.semi_supervised:
            self.parts = (*type(self).parts, "labelled")

    def __call__(self, output: LabelledOutput, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
        if not isinstance(output, LabelledOutput):
            raise VaelabError("the conditional ELBO scores a cond-vae's output only")
        reconstruction = -output.likelihood.log_prob(x)
        kl = output.z_posterior.kl().float()               # closed form against N(0, I) (Def. 3.1.1)
        logits = output.class_logits.float()
        classification = F.cross_entropy(logits, output.labels, reduction="none")
        accuracy = (logits.detach().argmax(1) == output.labels).float()
        loss = reconstruction + self.beta * kl_weight * kl + self.alpha * classification
        parts = {"reconstruction": reconstruction, "kl": kl, "classification": classification, "accuracy": accuracy}
        if output.unlabelled is not None:
            loss, parts = self._sum_out_labels(output, x, kl_weight, loss, parts)
        if self.semi_supervised:
            parts["labelled"] = (torch.ones_like(accuracy) if output.unlabelled is None
                                 else (~output.unlabelled).float())
        return LossTerms(loss=loss, parts=parts)

    def _sum_out_labels(self, output: LabelledOutput, x: torch.Tensor, kl_weight: float, loss: torch.Tensor,
                        parts: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The rows of ``output.unlabelled`` replaced by M2's bound with the label summed out."""
        rows = output.unlabelled
        per_label = output.per_label
        reconstruction = -per_label.likelihood.log_prob(x[rows]).float().T      # (B_u, C)
        kl = per_label.z_posterior.kl().float().T                                # (B_u, C)
        log_q = torch.log_softmax(output.class_logits[rows].float(), dim=-1)
        q = log_q.exp()
        negative_entropy = (q * log_q).sum(1)
        unlabelled_loss = (q * (reconstruction + self.beta * kl_weight * kl)).sum(1) + negative_entropy

        def put(full: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
            return full.masked_scatter(rows, values.to(full.dtype))

        parts = {"reconstruction": put(parts["reconstruction"], (q * reconstruction).sum(1)),
                 "kl": put(parts["kl"], (q * kl).sum(1)),
                 "classification": parts["classification"].masked_fill(rows, 0.0),
                 "accuracy": parts["accuracy"].masked_fill(rows, 0.0)}
        return put(loss, unlabelled_loss), parts

    def __repr__(self) -> str:
        semi = ", semi_supervised=True" if self.semi_supervised else ""
        return f"ConditionalELBO(beta={self.beta:g}, alpha={self.alpha:g}{semi})"
