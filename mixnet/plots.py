"""Spectrogram and spectrum figures for TensorBoard summaries and the evaluation report.

matplotlib with the non-interactive Agg backend, so it runs on headless machines and in tests.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mixnet import fileio, metrics  # noqa: E402

_FLOOR_DB = -100.0


def log_spectrogram(audio_tc, sample_rate, fft_size=1024, hop_size=256):
  """Log-magnitude spectrogram (dB, channels averaged): returns (spec_ft, freqs_hz, times_s).

  `spec_ft` is `[fft_size // 2 + 1, frames]`; 0 dB is a full-scale sine's peak bin.
  """
  mag = metrics.magnitude_frames(audio_tc, fft_size, hop_size) / (fft_size / 4)
  spec = 20 * np.log10(np.maximum(mag, 10 ** (_FLOOR_DB / 20))).T
  freqs = np.fft.rfftfreq(fft_size, 1 / sample_rate)
  times = np.arange(spec.shape[1]) * hop_size / sample_rate
  return spec, freqs, times


def spectrogram_figure(clips, sample_rate, max_hz=None):
  """One row per (title, audio_tc) in `clips`, shared colour scale; returns the Figure."""
  fig, axes = plt.subplots(len(clips), 1, figsize=(8, 2.2 * len(clips)), squeeze=False,
                           layout="constrained")
  for ax, (title, audio_tc) in zip(axes[:, 0], clips, strict=True):
    spec, freqs, times = log_spectrogram(audio_tc, sample_rate)
    mesh = ax.pcolormesh(times, freqs, spec, vmin=_FLOOR_DB, vmax=0, shading="auto",
                         cmap="magma")
    ax.set_yscale("symlog", linthresh=500)
    ax.set_ylim(20, max_hz or sample_rate / 2)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("Hz")
  axes[-1, 0].set_xlabel("s")
  fig.colorbar(mesh, ax=axes[:, 0].tolist(), label="dB")
  return fig


def figure_to_array(fig):
  """Renders a Figure to uint8 `[height, width, 3]` and closes it."""
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return image


def save_figure(fig, path):
  """Writes a Figure as PNG (to a temporary name, then renamed) and closes it."""
  with fileio.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
  plt.close(fig)
