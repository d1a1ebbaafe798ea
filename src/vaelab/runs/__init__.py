"""Run directories, below training and the applications: their config, files and models.

``RunConfig`` (``[model]``, ``[data]``, ``[train]``) and the format of ``config.toml``
(runs/config.py), the files of a run and loading its model (runs/directory.py), and reading
``metrics.jsonl`` (runs/metrics_file.py). Training writes runs; evaluation, the applications,
reports and the explorer read them, all through here.
"""

from .config import FORMAT_VERSION, READABLE_FORMATS, RunConfig, config_from_dict, read_config, write_config
from .directory import (CHECKPOINT_FILE, CHECKPOINT_JSON, CONFIG_FILE, METRICS_FILE, MODEL_FILE, Run, load_model,
                        model_metadata, open_run, run_path)
from .metrics_file import iter_metrics, read_metrics
from .train_config import TrainConfig

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_JSON", "CONFIG_FILE", "FORMAT_VERSION", "METRICS_FILE", "MODEL_FILE",
           "READABLE_FORMATS", "Run", "RunConfig", "TrainConfig", "config_from_dict", "iter_metrics", "load_model",
           "model_metadata", "open_run", "read_config", "read_metrics", "run_path", "write_config"]
