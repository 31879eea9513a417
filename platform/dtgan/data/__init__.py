"""Data: the Parquet format, the embedded synthetic benchmark, importers, datasets and samplers."""

from dtgan.data.vocab import NORMAL, NORMAL_INDEX, Vocab

__all__ = ["NORMAL", "NORMAL_INDEX", "Vocab"]
