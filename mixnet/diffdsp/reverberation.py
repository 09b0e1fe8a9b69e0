"""Filtered-noise reverb in jnp (the DDSP filtered-noise idea with per-band exponential decay).

The impulse response of channel c is

  h_c(t) = sum_b 10^(band_db_b / 20) * 10^(-3 t / rt60_b) * n_cb(t),   0 <= t < taps,

with `n_cb` a fixed noise split into frequency bands by complementary brick-wall FFT masks at
`edges_hz` (the bands add up to the full noise). Band b's energy falls by 60 dB in `rt60_b`
seconds, so the response can fit a room, a plate or an algorithmic reverb whose decay and colour
vary with frequency (ours damps the highs). The noise is drawn once from a seed and kept as a
constant (noise drawn anew at each call would make the gradients noisy), or, with
`VocalChain(learn_noise=True)`, learned: then the response can take the fine structure of the
user's reverb, which no noise drawn at random has (a mix's spectrogram follows its reverb's
echoes, so a random noise with the right decays scores no better than no reverb at all on
MR-STFT), while the per-band decays stay its envelope and its settings. Each channel's response
is scaled to unit energy, a 10 ms fade ends it, and it is delayed by `predelay_ms` by a linear
phase in the frequency domain (a fractional delay, so the pre-delay has a gradient). The reverb
adds `send` times the wet signal to the dry one and is applied by FFT convolution.

The response is finite: `ir_taps(...)` samples, which is the reverb's whole memory.
"""

import functools

import jax.numpy as jnp
import numpy as np

from mixnet.diffdsp import core

DEFAULT_EDGES_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
FADE_S = 0.01


def band_edges(sample_rate, edges_hz=DEFAULT_EDGES_HZ):
  """The edges below 0.45 x the sample rate; the bands are the gaps between them (len + 1)."""
  return tuple(float(e) for e in edges_hz if e < 0.45 * sample_rate)


def white_noise(taps, channels, seed):
  """Unit-variance Gaussian noise, float32 `[channels, taps]`, drawn from `seed`."""
  return np.random.default_rng(seed).standard_normal((channels, taps)).astype(np.float32)


def band_masks(taps, sample_rate, edges_hz):
  """0/1 masks `[bands, taps // 2 + 1]` of each band's rfft bins (they cover every bin once)."""
  freqs = np.fft.rfftfreq(taps, 1.0 / sample_rate)
  bounds = (0.0,) + tuple(edges_hz) + (np.inf,)
  return np.stack([(freqs >= lo) & (freqs < hi)
                   for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]).astype(np.float32)


def split_bands(noise_ct, sample_rate, edges_hz):
  """`[channels, taps]` noise split into bands by FFT masks, `[channels, bands, taps]` (jnp).

  Linear and differentiable: used on a learned noise (`VocalChain(learn_noise=True)`).
  """
  taps = noise_ct.shape[-1]
  masks = jnp.asarray(band_masks(taps, sample_rate, edges_hz))
  return jnp.fft.irfft(jnp.fft.rfft(noise_ct, axis=-1)[:, None] * masks[None], taps, axis=-1)


@functools.lru_cache(maxsize=8)
def band_noise(taps, channels, sample_rate, edges_hz, seed):
  """`white_noise` split into bands, float32 `[channels, bands, taps]` (a cached constant)."""
  spectrum = np.fft.rfft(white_noise(taps, channels, seed).astype(np.float64), axis=1)
  masks = band_masks(taps, sample_rate, edges_hz)
  out = np.fft.irfft(spectrum[:, None] * masks[None], taps, axis=2).astype(np.float32)
  out.setflags(write=False)
  return out


def ir_taps(tail_taps, sample_rate, max_predelay_ms):
  """Length of the delayed response: the tail plus the longest pre-delay, in samples."""
  return tail_taps + int(np.ceil(max_predelay_ms * 1e-3 * sample_rate))


def impulse_response(noise_cbt, sample_rate, rt60_s, band_db, predelay_ms, max_predelay_ms,
                     buildup_ms=None):
  """The wet impulse response, float32 `[ir_taps, channels]`, unit energy per channel.

  Args:
    noise_cbt: `band_noise(...)`, `[channels, bands, taps]`.
    sample_rate: Hz.
    rt60_s: `[bands]` decay time to -60 dB per band, seconds.
    band_db: `[bands]` level of each band, dB (relative; the response is normalised).
    predelay_ms: delay before the tail, ms, in [0, max_predelay_ms].
    max_predelay_ms: the largest pre-delay the response has room for.
    buildup_ms: time constant of the tail's onset, ms: the envelope is multiplied by
      `1 - exp(-t / buildup)`, as a room's or a reverb network's echo density builds up; None
      starts the tail at full level.
  """
  taps = noise_cbt.shape[2]
  t = jnp.arange(taps, dtype=jnp.float32) / sample_rate
  envelope_bt = jnp.exp((-3.0 * np.log(10.0)) * t[None, :] / rt60_s[:, None])
  if buildup_ms is not None:
    envelope_bt = envelope_bt * (1.0 - jnp.exp(-t * 1e3 / buildup_ms))[None, :]
  weights_bt = core.db_to_gain(band_db)[:, None] * envelope_bt
  ir_ct = jnp.sum(noise_cbt * weights_bt[None], axis=1)
  fade = min(taps, int(FADE_S * sample_rate))
  ir_ct = ir_ct * jnp.asarray(np.concatenate([np.ones(taps - fade), np.linspace(1, 0, fade)]),
                              jnp.float32)
  ir_ct = ir_ct / jnp.sqrt(jnp.sum(ir_ct ** 2, axis=1, keepdims=True))
  total = ir_taps(taps, sample_rate, max_predelay_ms)
  size = 1 << int(np.ceil(np.log2(total)))
  phase = jnp.exp(-2j * jnp.pi * jnp.arange(size // 2 + 1) / size
                  * (predelay_ms * 1e-3 * sample_rate))
  delayed_ct = jnp.fft.irfft(jnp.fft.rfft(ir_ct, size, axis=1) * phase, size, axis=1)
  return delayed_ct[:, :total].T.astype(jnp.float32)


def reverb(x_btc, ir_tc, send_db):
  """`x + 10^(send_db / 20) * (x conv ir)` per channel, float32 `[batch, time, channels]`."""
  return x_btc + core.db_to_gain(send_db) * core.fft_convolve(x_btc, ir_tc)


def schroeder_rt60(ir_t, sample_rate, fit_db=(-5.0, -25.0)):
  """RT60 (s) of a response by Schroeder backward integration (numpy), from the T20 slope.

  The energy decay curve `EDC(t) = sum_{u >= t} h(u)^2` in dB is fitted by a line between
  `fit_db[0]` and `fit_db[1]` below its start, and extrapolated to -60 dB.
  """
  energy = np.cumsum(np.asarray(ir_t, np.float64)[::-1] ** 2)[::-1]
  edc_db = 10.0 * np.log10(np.maximum(energy / energy[0], 1e-30))
  fit = (edc_db <= fit_db[0]) & (edc_db >= fit_db[1])
  if np.count_nonzero(fit) < 2:
    raise ValueError(f"the response does not decay from {fit_db[0]} to {fit_db[1]} dB")
  t = np.nonzero(fit)[0] / sample_rate
  slope = np.polyfit(t, edc_db[fit], 1)[0]
  return float(-60.0 / slope)
