"""Data placement for the algorithms (torch only): RI-SGD's redundant chunks and their sampler."""
from hvd_qsparse.data.chunks import assign_chunks, holders, split_chunks, window
from hvd_qsparse.data.redundant_sampler import RedundantSampler

__all__ = ["RedundantSampler", "assign_chunks", "holders", "split_chunks", "window"]
