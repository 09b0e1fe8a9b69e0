"""Gain staging and output level.

Input gain staging brings each take to a reference loudness measured on the whole take, so the
level the compressor sees is the take's, not the crop's (a crop of a quiet verse would otherwise
look like a quiet take). It is computed once per take outside the model, in numpy, with the
BS.1770 meter of `mixnet.dsp.loudness` (`staging_gain_db`), and applied to the audio before the
model sees it; the model's own output level is a learned constant gain (`output_level`).
"""

from mixnet.diffdsp import core
from mixnet.dsp import loudness


def gain_for_loudness(take_lufs, reference_lufs):
  """Gain (dB) that brings a take measured at `take_lufs` to `reference_lufs`.

  Silence (the meter's floor) gets 0 dB, as `mixnet.dsp.normalize_loudness` leaves it. The
  input pipeline applies the same rule in TensorFlow to the loudness stored with the shards.
  """
  if take_lufs <= loudness.LOUDNESS_FLOOR_LUFS:
    return 0.0
  return float(reference_lufs - take_lufs)


def staging_gain_db(take_tc, sample_rate, reference_lufs):
  """Gain (dB) that brings the whole take `take_tc` (`[time, channels]`) to `reference_lufs`."""
  return gain_for_loudness(loudness.integrated_loudness(take_tc, sample_rate), reference_lufs)


def output_level(x_btc, gain_db):
  """Scales `[batch, time, channels]` audio by `gain_db` dB."""
  return x_btc * core.db_to_gain(gain_db)
