"""Small signal helpers shared by the data tests (pytest puts tests/ on the import path)."""

import numpy as np


def shift(x_tc, offset):
  """Delays (offset > 0: zeros in front) or advances (< 0: drops samples) `[time, channels]`."""
  if offset >= 0:
    return np.concatenate([np.zeros((offset, x_tc.shape[1]), x_tc.dtype), x_tc])
  return x_tc[-offset:]
