"""Active units and probe accuracies on representations whose answers are known."""

from __future__ import annotations

import numpy as np
import torch

from vaelab.evaluation.latent import active_units, activity
from vaelab.evaluation.representation import probe_accuracies


def test_active_units_count_dimensions_whose_mean_moves():
    g = torch.Generator().manual_seed(0)
    stds = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.01, 0.0])    # variances 1, .25, .04, .0025, 1e-4, 0
    means = torch.randn(20000, 6, generator=g) * stds + 3.0   # an offset does not make a unit active
    assert torch.allclose(activity(means), stds.double() ** 2, rtol=0.05, atol=1e-6)
    assert active_units(means) == 3
    assert active_units(means, threshold=0.001) == 4


def test_probes_read_labels_from_an_informative_code_and_not_from_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 1200)
    informative = np.eye(4)[labels] * 3 + 0.3 * rng.standard_normal((1200, 4))
    noise = rng.standard_normal((1200, 4))
    good = probe_accuracies(informative[:1000], labels[:1000], informative[1000:], labels[1000:])
    bad = probe_accuracies(noise[:1000], labels[:1000], noise[1000:], labels[1000:])
    assert good["linear_probe"] > 0.98 and good["knn"] > 0.98
    assert bad["linear_probe"] < 0.4 and bad["knn"] < 0.4     # chance is 0.25
