"""Data sets as uint8 tensors in memory, splits, binarisation and batch loading."""

from . import sources  # noqa: F401  (registers the data sets)
from .config import DataConfig
from .loader import BatchLoader, eval_batches
from .registry import RawData, dataset_names, register_dataset
from .splits import DataSplits, ImageSet, binarize_fixed, load_data

__all__ = ["BatchLoader", "DataConfig", "DataSplits", "ImageSet", "RawData", "binarize_fixed", "dataset_names",
           "eval_batches", "load_data", "register_dataset"]
