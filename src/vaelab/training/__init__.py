"""Training: the engine, checkpoints, metrics and DDP."""

from .config import TrainConfig
from .engine import TrainResult, evaluate_loss, train

__all__ = ["TrainConfig", "TrainResult", "evaluate_loss", "train"]
