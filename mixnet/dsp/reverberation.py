"""Freeverb-style algorithmic reverb, applied by FFT convolution with its exact impulse response.

The network is Jezar's Freeverb: eight parallel feedback combs, each with a one-pole low-pass in
its loop ("damping"), then four Schroeder all-passes in series; the right channel uses comb and
all-pass delays 23 samples longer, which decorrelates the two sides. Comb `i` with delay `D_i`
has transfer function `z^-D / (1 - g_i L(z) z^-D)`, `L(z) = (1 - d) / (1 - d z^-1)`, and its
feedback `g_i = 10^(-3 D_i / (RT60 * rate))` makes every comb fall 60 dB in RT60 seconds at low
frequencies (L has unit gain at DC; higher frequencies die faster as damping grows).

The network is linear and time invariant, so instead of running these recursions sample by
sample (the comb loops are ~1200 samples long, which `lfilter` would treat as a dense order-1200
filter) its impulse response is evaluated exactly on a dense FFT grid (twice the kept length,
so the time aliasing is below -150 dB) and applied by FFT overlap-add convolution in float32
(rounding noise near -140 dB). Blocks about twice the response's length (FFTs three times
its length), transformed in one batched FFT call, are faster on a long file than a single
signal-length FFT (`scipy.signal.fftconvolve`) and than blocks as long as the response. The
response is cached per parameter set, so a preset pays for it once.
"""

import functools
import os

import numpy as np
import scipy.fft

from mixnet import audio
from mixnet.dsp import core

# Freeverb's tunings at 44.1 kHz (samples); scaled to other rates.
COMB_DELAYS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_DELAYS = (556, 441, 341, 225)
ALLPASS_GAIN = 0.5
STEREO_SPREAD = 23
TUNING_RATE = 44100.0
# Length of the kept response in units of RT60: 1.5 RT60 is 90 dB down.
TAIL_RT60S = 1.5
FADE_S = 0.01


def _channel_response(sample_rate, rt60_s, damping, spread, fft_size, keep):
  scale = sample_rate / TUNING_RATE
  bins = np.arange(fft_size // 2 + 1)
  # z^-D on the FFT grid is exp(-2 pi i k D / N) = unit[(k D) mod N]: one table, integer lookups.
  unit = np.exp(-2j * np.pi * np.arange(fft_size) / fft_size)

  def delay(samples):
    return unit[(bins * samples) % fft_size]

  loop_lowpass = (1.0 - damping) / (1.0 - damping * delay(1))
  response = np.zeros(bins.size, np.complex128)
  for tuning in COMB_DELAYS:
    length = int(round((tuning + spread) * scale))
    feedback = 10.0 ** (-3.0 * length / (rt60_s * sample_rate))
    response += delay(length) / (1.0 - feedback * loop_lowpass * delay(length))
  for tuning in ALLPASS_DELAYS:
    z_d = delay(int(round((tuning + spread) * scale)))
    response *= (z_d - ALLPASS_GAIN) / (1.0 - ALLPASS_GAIN * z_d)
  return scipy.fft.irfft(response, fft_size)[:keep]


@functools.lru_cache(maxsize=16)
def impulse_response(sample_rate, rt60_s, damping=0.5, predelay_ms=20.0):
  """The reverb's wet impulse response, float32 `[time, 2]` (left, right), unit energy per side.

  Args:
    sample_rate: Hz.
    rt60_s: time for the low-frequency tail to decay by 60 dB, in seconds (> 0).
    damping: in [0, 1); how much faster high frequencies decay (0: same RT60 at all frequencies).
    predelay_ms: silence before the tail starts, in ms (>= 0).
  """
  sample_rate = core.check_rate(sample_rate)
  if rt60_s <= 0:
    raise ValueError(f"reverb RT60 must be > 0 s, got {rt60_s}")
  if not 0.0 <= damping < 1.0:
    raise ValueError(f"reverb damping must be in [0, 1), got {damping}")
  if predelay_ms < 0:
    raise ValueError(f"reverb pre-delay must be >= 0 ms, got {predelay_ms}")
  keep = int(TAIL_RT60S * rt60_s * sample_rate) + 2 * max(COMB_DELAYS + ALLPASS_DELAYS)
  fft_size = scipy.fft.next_fast_len(2 * keep, real=True)
  sides = [_channel_response(sample_rate, rt60_s, damping, spread, fft_size, keep)
           for spread in (0, STEREO_SPREAD)]
  ir_tc = np.stack(sides, axis=1)
  ir_tc /= np.sqrt(np.sum(ir_tc ** 2, axis=0, keepdims=True))
  fade = min(keep, int(FADE_S * sample_rate))
  ir_tc[keep - fade:] *= np.linspace(1.0, 0.0, fade)[:, None]
  predelay = int(round(predelay_ms * 1e-3 * sample_rate))
  ir_tc = np.pad(ir_tc, ((predelay, 0), (0, 0))).astype(np.float32)
  ir_tc.setflags(write=False)
  return ir_tc


def convolve(audio_tc, ir_tc):
  """Convolves each channel of `audio_tc` with the same channel of `ir_tc`, float32.

  Returns the first `audio_tc.shape[0]` samples of the full convolution, `[time, channels]`.
  """
  num, channels = audio_tc.shape
  taps = ir_tc.shape[0]
  fft_size = scipy.fft.next_fast_len(max(3 * taps, 4096), real=True)
  if num + taps - 1 <= fft_size:
    spectrum = scipy.fft.rfft(audio_tc, fft_size, axis=0) * scipy.fft.rfft(ir_tc, fft_size, axis=0)
    return scipy.fft.irfft(spectrum, fft_size, axis=0)[:num].astype(np.float32)
  block = fft_size - taps + 1
  count = -(-num // block)
  blocks_bsc = np.zeros((count * block, channels), np.float32)
  blocks_bsc[:num] = audio_tc
  blocks_bsc = blocks_bsc.reshape(count, block, channels)
  spectrum = scipy.fft.rfft(blocks_bsc, fft_size, axis=1)
  spectrum *= scipy.fft.rfft(ir_tc, fft_size, axis=0)[None]
  out_bsc = scipy.fft.irfft(spectrum, fft_size, axis=1)
  # Each block's tail (taps - 1 <= block samples) overlaps only the next block.
  summed_bsc = np.zeros((count + 1, block, channels), np.float32)
  summed_bsc[:count] = out_bsc[:, :block]
  summed_bsc[1:, :fft_size - block] += out_bsc[:, block:]
  return summed_bsc.reshape(-1, channels)[:num]


def reverb(audio_tc, sample_rate, rt60_s, predelay_ms=20.0, damping=0.5, mix=0.2):
  """Adds Freeverb-style reverb.

  A mono input is convolved with the left response only, so it stays mono; a stereo input gets
  the left response on the left and the (decorrelated) right response on the right. The tail
  past the end of the input is dropped (the output keeps the input's length).

  Args:
    audio_tc: float `[time, channels]` (1 or 2 channels).
    sample_rate: Hz.
    rt60_s: decay time to -60 dB in seconds.
    predelay_ms: gap between the dry sound and the tail in ms.
    damping: in [0, 1); high-frequency damping of the tail.
    mix: wet fraction in [0, 1]; the wet response has unit energy, so 0.5 is an even blend.

  Returns:
    float32 `[time, channels]`.
  """
  audio_tc = core.as_audio(audio_tc)
  num, channels = audio_tc.shape
  if channels > 2:
    raise ValueError(f"reverb handles mono or stereo, got {channels} channels")
  ir_tc = impulse_response(core.check_rate(sample_rate), float(rt60_s), float(damping),
                           float(predelay_ms))[:, :channels]
  if num == 0:
    return audio_tc
  wet_tc = convolve(audio_tc, ir_tc)
  return core.mix(audio_tc, wet_tc, mix)


@functools.lru_cache(maxsize=8)
def _impulse_response_file(path, modified, sample_rate):
  del modified  # part of the cache key: an edited file is read again
  ir_tc, _ = audio.load(path, sample_rate=sample_rate)
  ir_tc.setflags(write=False)
  return ir_tc


def load_impulse_response(path, sample_rate):
  """An impulse response file as float32 `[time, channels]` at `sample_rate` (cached per file).

  Raises:
    AudioError: the file is missing or not readable audio (the message names it).
  """
  path = os.path.abspath(os.fspath(path))
  modified = os.path.getmtime(path) if os.path.exists(path) else None
  return _impulse_response_file(path, modified, float(sample_rate))


def convolution_reverb(audio_tc, sample_rate, ir_file, send_db):
  """Adds `10^(send_db / 20)` times the input convolved with the response in `ir_file`.

  A stereo response on a mono input uses its left channel; a mono response is used on both
  sides of a stereo input. The tail past the end of the input is dropped.

  Returns:
    float32 `[time, channels]`.
  """
  audio_tc = core.as_audio(audio_tc)
  ir_tc = load_impulse_response(ir_file, core.check_rate(sample_rate))
  channels = audio_tc.shape[1]
  ir_tc = ir_tc[:, :channels] if ir_tc.shape[1] >= channels else np.repeat(ir_tc, channels, 1)
  if audio_tc.shape[0] == 0:
    return audio_tc
  wet_tc = convolve(audio_tc, ir_tc)
  return (audio_tc + np.float32(core.db_to_gain(send_db)) * wet_tc).astype(np.float32)
