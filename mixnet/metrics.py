"""Quality metrics of a processed vocal against the user's own mix.

One set of functions serves training evaluation and the evaluation report, so the numbers in
TensorBoard and in `report.md` mean the same thing. Inputs are float32 `[time, channels]` numpy
arrays at `sample_rate` Hz; the prediction and the target have the same shape.

Metrics (lower is better except SI-SDR):
  mr_stft            the training loss's multi-resolution STFT distance (auraloss definition).
  l1                 mean absolute sample difference.
  si_sdr             scale-invariant signal-to-distortion ratio, dB (higher is better).
  loudness_error_lu  |integrated loudness(pred) - loudness(target)|, LU (ITU-R BS.1770).
  centroid_error_hz  |spectral centroid(pred) - centroid(target)|, Hz: brightness/EQ balance.
  crest_error_db     |crest factor(pred) - crest factor(target)|, dB (20 log10 peak/RMS): dynamics.
"""

import numpy as np

from mixnet import dsp, losses, spectral_ops

METRIC_NAMES = ("mr_stft", "l1", "si_sdr", "loudness_error_lu", "centroid_error_hz",
                "crest_error_db")
_EPS = 1e-8


def mr_stft(pred_tc, target_tc):
  """Multi-resolution STFT distance of one clip (the training loss's definition).

  Runs eagerly rather than jitted: clips differ in length and a compile per length costs more
  than the few large FFTs it would save.
  """
  return float(losses.multi_resolution_stft_loss(pred_tc[None], target_tc[None]))


def si_sdr(pred_tc, target_tc):
  """Scale-invariant SDR in dB over all channels (Le Roux et al., 2019)."""
  s, s_hat = target_tc.astype(np.float64).ravel(), pred_tc.astype(np.float64).ravel()
  alpha = np.dot(s_hat, s) / (np.dot(s, s) + _EPS)
  projection = alpha * s
  noise = s_hat - projection
  ratio = (np.dot(projection, projection) + _EPS) / (np.dot(noise, noise) + _EPS)
  return float(10 * np.log10(ratio))


def magnitude_frames(audio_tc, fft_size, hop_size):
  """STFT magnitudes of a clip, channels averaged: float64 `[frames, fft_size // 2 + 1]`.

  Hann frames of `fft_size` every `hop_size` samples from the first sample on, uncentred
  (`spectral_ops.np_stft`); a clip shorter than one frame is zero-padded to one.
  """
  x_t = np.asarray(audio_tc, np.float64).mean(axis=1)
  x_t = np.pad(x_t, (0, max(0, fft_size - len(x_t))))
  return np.abs(spectral_ops.np_stft(x_t[None], fft_size, hop_size, fft_size, center=False)[0])


def spectral_centroid(audio_tc, sample_rate, fft_size=2048):
  """Magnitude-weighted mean frequency (Hz) of the clip's average spectrum (channels averaged)."""
  mag = magnitude_frames(audio_tc, fft_size, fft_size // 2).mean(axis=0)
  freqs = np.fft.rfftfreq(fft_size, 1 / sample_rate)
  return float(np.sum(freqs * mag) / (np.sum(mag) + _EPS))


def crest_factor_db(audio_tc):
  """Peak-to-RMS ratio in dB (20 log10)."""
  x = audio_tc.astype(np.float64)
  rms = np.sqrt(np.mean(x ** 2))
  return float(20 * np.log10((np.max(np.abs(x)) + _EPS) / (rms + _EPS)))


def compute(pred_tc, target_tc, sample_rate):
  """All METRIC_NAMES for one clip, as a dict of floats."""
  pred_tc = np.asarray(pred_tc, np.float32)
  target_tc = np.asarray(target_tc, np.float32)
  if pred_tc.shape != target_tc.shape:
    raise ValueError(f"prediction {pred_tc.shape} and target {target_tc.shape} differ in shape")
  return {
      "mr_stft": mr_stft(pred_tc, target_tc),
      "l1": float(np.mean(np.abs(pred_tc - target_tc))),
      "si_sdr": si_sdr(pred_tc, target_tc),
      # Floored at -70 LUFS (the BS.1770 gate), so silence compares finitely.
      "loudness_error_lu": abs(dsp.integrated_loudness(pred_tc, sample_rate)
                               - dsp.integrated_loudness(target_tc, sample_rate)),
      "centroid_error_hz": abs(spectral_centroid(pred_tc, sample_rate)
                               - spectral_centroid(target_tc, sample_rate)),
      "crest_error_db": abs(crest_factor_db(pred_tc) - crest_factor_db(target_tc)),
  }


def average(rows):
  """Mean of each metric over a list of `compute` dicts (NaN-free rows only are expected)."""
  return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}
