"""Representation quality: how much of the label a simple classifier reads off the codes.

Two probes, each fitted on (a capped subset of) the training split and scored on the
evaluated split: a linear probe (multinomial logistic regression on standardised
features) and a k-nearest-neighbour classifier (k = 5, Euclidean). The same probes on the
raw pixels are the baseline: a representation worth having should do at least as well
from D numbers as the probes do from C·H·W. A model with its own classifier q(y|x) (a
cond-vae) is also scored by it: `classifier_accuracy`.
"""

from __future__ import annotations

import numpy as np

KNN_K = 5


def probe_accuracies(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                     test_labels: np.ndarray, k: int = KNN_K, seed: int = 0) -> dict[str, float]:
    """Accuracies of a linear probe and of k-NN: (N_train, F), (N_train,), (N_test, F), (N_test,)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features = np.asarray(train_features, dtype=np.float64)
    test_features = np.asarray(test_features, dtype=np.float64)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))
    with warnings.catch_warnings():
        # A probe that has not fully converged after 500 iterations is still a fair probe.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train_features, train_labels)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_labels)))
    knn.fit(train_features, train_labels)
    return {"linear_probe": float(probe.score(test_features, test_labels)),
            "knn": float(knn.score(test_features, test_labels))}


def classifier_accuracy(model, images, labels: np.ndarray, batch_size: int = 500) -> float:
    """Share of uint8 images (N, C, H, W) whose class argmax q(y|x) of the model's classifier is the label."""
    import torch

    from ..data import eval_batches
    from ..models.base import device_of

    right = 0
    with torch.inference_mode():
        for i, x in enumerate(eval_batches(images, batch_size, device_of(model))):
            guess = model.classify(x).argmax(dim=-1).cpu().numpy()
            right += int((guess == labels[i * batch_size:i * batch_size + len(guess)]).sum())
    return right / max(images.shape[0], 1)


__all__ = ["KNN_K", "classifier_accuracy", "probe_accuracies"]
