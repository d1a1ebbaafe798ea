"""Training: the engine, checkpoints, metrics and DDP."""

from ..runs.train_config import TrainConfig
from .engine import TrainResult, TrainState, evaluate_loss, train

__all__ = ["TrainConfig", "TrainResult", "TrainState", "evaluate_loss", "train"]
