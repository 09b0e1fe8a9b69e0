"""Figures for TensorBoard summaries and the evaluation report: spectrograms, style card curves.

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


def eq_figure(freqs_hz, gain_db, sample_rate):
  """An EQ's magnitude (dB) over a log frequency axis, 20 Hz to Nyquist; returns the Figure."""
  gain_db = np.asarray(gain_db)
  fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
  ax.semilogx(freqs_hz, gain_db, color="C0", lw=1.5)
  ax.axhline(0, color="k", lw=0.5)
  # Steep filter skirts would otherwise squash the bands that matter into a few pixels.
  ax.set(xlim=(20, sample_rate / 2), ylim=(max(gain_db.min(), -36.0) - 2, gain_db.max() + 3),
         xlabel="Hz", ylabel="dB", title="EQ")
  ax.grid(True, which="both", alpha=0.3)
  return fig


def compressor_figure(input_db, output_db, threshold_db, knee_db):
  """A compressor's static curve (output vs input level, dBFS), threshold and knee marked."""
  fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
  ax.plot(input_db, input_db, color="0.6", lw=0.8, ls="--", label="1:1")
  ax.plot(input_db, output_db, color="C1", lw=1.5, label="output")
  ax.axvspan(threshold_db - knee_db / 2, threshold_db + knee_db / 2, color="C1", alpha=0.15,
             label=f"knee {knee_db:.3g} dB")
  ax.axvline(threshold_db, color="C1", lw=0.8, label=f"threshold {threshold_db:.3g} dBFS")
  ax.set(xlabel="input level, dBFS", ylabel="output level, dBFS", title="Compressor")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  return fig


def reverb_figure(band_ranges_hz, rt60_s, measured_rt60_s, decay_time_s, decay_db_bt):
  """RT60 per band (setting and measured) as steps over frequency, and each band's energy
  decay curve (dB vs s)."""
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
  edges = [max(band_ranges_hz[0][0], 20.0)] + [high for _, high in band_ranges_hz]
  left.stairs(rt60_s, edges, color="C2", lw=1.5, label="setting")
  left.stairs(measured_rt60_s, edges, color="k", lw=1, ls="--", label="measured (T20)")
  top = 1.15 * max(max(rt60_s), max(measured_rt60_s))
  left.set(xscale="log", xlim=(edges[0], edges[-1]), ylim=(0, top), xlabel="Hz",
           ylabel="RT60, s", title="Reverb decay time per band")
  left.legend(fontsize=8)
  left.grid(True, which="both", alpha=0.3)
  colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(band_ranges_hz)))
  for (low, high), decay_t, color in zip(band_ranges_hz, decay_db_bt, colors, strict=True):
    right.plot(decay_time_s, decay_t, color=color, lw=1, label=f"{low:.0f}-{high:.0f} Hz")
  right.axhline(-60, color="k", lw=0.5)
  right.set(ylim=(-80, 2), xlabel="s", ylabel="dB", title="Energy decay per band")
  right.grid(True, alpha=0.3)
  right.legend(fontsize=7, ncol=2)
  return fig
