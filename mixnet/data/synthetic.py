"""Built-in demo data: deterministic synthetic raw vocals and their DSP-mixed versions.

A raw take is built like a voice: a band-limited harmonic (glottal) source whose pitch follows
notes or speech-like glides with vibrato, shaped by a moving vowel formant envelope, with
consonant noise bursts at syllable onsets, pauses between phrases, phrase-to-phrase level changes,
a little room noise and low-frequency rumble. The "mix" is that take through `mixnet.dsp.process`
with a named preset (EQ, compression, saturation, reverb, loudness), so a model trained on these
pairs has a real mixing style to learn. Demo runs, tests and benchmarks all use this module.

Audio is float32 `[time, 1]` at `sample_rate` Hz.
"""

import os

import numpy as np

from mixnet import audio, dsp

# (F1, F2, F3) in Hz and bandwidths scale, for a few vowels.
_VOWELS = np.array([
    (730, 1090, 2440),  # a
    (530, 1840, 2480),  # e
    (270, 2290, 3010),  # i
    (570, 840, 2410),  # o
    (300, 870, 2240),  # u
], dtype=np.float64)
_FORMANT_BW = np.array([90.0, 110.0, 170.0])
_FORMANT_GAIN_DB = np.array([0.0, -6.0, -12.0])
# Singer's formant cluster near 3 kHz, small but audible.
_SINGER_FORMANT = (3000.0, 400.0, -14.0)


def _envelope_db(freq_hz, formants):
  """Vocal-tract magnitude (dB) at `freq_hz` for `formants` ([..., 3] Hz, broadcast)."""
  lin = np.zeros(np.broadcast_shapes(freq_hz.shape, formants.shape[:-1]))
  for i in range(3):
    f = formants[..., i]
    lin += 10 ** (_FORMANT_GAIN_DB[i] / 20) / (1 + ((freq_hz - f) / _FORMANT_BW[i]) ** 2)
  fs, bw, g = _SINGER_FORMANT
  lin += 10 ** (g / 20) / (1 + ((freq_hz - fs) / bw) ** 2)
  return np.maximum(-60.0, 20 * np.log10(lin + 1e-6))


def _pitch_and_gate(num_samples, sample_rate, rng, sung, base_hz):
  """Per-sample f0 (Hz), vowel formants ([T, 3]), voicing gate ([T]) and syllable onsets."""
  f0 = np.zeros(num_samples)
  formants = np.zeros((num_samples, 3))
  gate = np.zeros(num_samples)
  onsets = []
  t = int(rng.uniform(0.05, 0.3) * sample_rate)
  phrase_gain = 1.0
  while t < num_samples - int(0.1 * sample_rate):
    if rng.random() < 0.2:  # a pause between phrases, then a new phrase level
      t += int(rng.uniform(0.25, 0.7) * sample_rate)
      phrase_gain = 10 ** (rng.uniform(-9, 3) / 20)
      continue
    dur_s = rng.uniform(0.25, 0.9) if sung else rng.uniform(0.08, 0.3)
    n = min(int(dur_s * sample_rate), num_samples - t)
    semis = rng.choice([0, 2, 3, 5, 7, 9, 12]) if sung else rng.normal(0, 2)
    start_hz = base_hz * 2 ** (semis / 12)
    end_hz = start_hz * (1 if sung else 2 ** (rng.normal(0, 2) / 12))
    tt = np.arange(n) / sample_rate
    contour = np.geomspace(start_hz, end_hz, n)
    if sung:  # vibrato fades in after the note onset
      depth = 2 ** (0.3 * np.minimum(tt / 0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(4.8, 6.2) * tt)
                    / 12)
      contour = contour * depth
    f0[t:t + n] = contour
    v0, v1 = _VOWELS[rng.integers(len(_VOWELS))], _VOWELS[rng.integers(len(_VOWELS))]
    w = np.linspace(0, 1, n)[:, None]
    formants[t:t + n] = (1 - w) * v0 + w * v1
    attack, release = min(int(0.02 * sample_rate), n // 2), min(int(0.06 * sample_rate), n // 2)
    env = np.ones(n)
    env[:attack] = np.linspace(0, 1, attack)
    if release:
      env[-release:] = np.linspace(1, 0, release)
    gate[t:t + n] = env * phrase_gain * 10 ** (rng.uniform(-3, 1) / 20)
    onsets.append(t)
    t += n + int(rng.uniform(0.0, 0.08) * sample_rate)
  # Unvoiced stretches keep the last pitch so the phase stays smooth.
  last = base_hz
  for i in np.flatnonzero(f0 == 0):
    f0[i] = last if i == 0 or f0[i - 1] == 0 else f0[i - 1]
  formants[gate == 0] = _VOWELS[0]
  return f0, formants, gate, onsets


def _consonants(num_samples, sample_rate, rng, onsets):
  """High-passed noise bursts (s, sh, t-like) before some syllables."""
  out = np.zeros(num_samples)
  noise = rng.standard_normal(num_samples)
  # First-difference pre-emphasis twice: energy concentrated above ~4 kHz.
  hiss = np.diff(np.diff(noise, prepend=0), prepend=0) / 4
  for t in onsets:
    if rng.random() < 0.45:
      n = int(rng.uniform(0.03, 0.12) * sample_rate)
      start = max(0, t - n)
      seg = hiss[start:t]
      win = np.hanning(len(seg)) if len(seg) > 1 else np.ones(len(seg))
      out[start:t] += seg * win * 10 ** (rng.uniform(-22, -12) / 20)
  return out


def _draw_voice(rng, sung, base_hz):
  sung = bool(rng.random() < 0.6) if sung is None else sung
  base_hz = float(rng.uniform(95, 330)) if base_hz is None else base_hz
  return sung, base_hz


def voice_of(seed):
  """(sung, base_hz): the voice `synth_vocal(..., seed=seed)` draws (for per-voice breakdowns)."""
  return _draw_voice(np.random.default_rng(seed), None, None)


def synth_vocal(seconds, sample_rate=44100, seed=0, sung=None, base_hz=None):
  """Makes one deterministic synthetic raw vocal take.

  Args:
    seconds: duration.
    sample_rate: Hz.
    seed: int or sequence of ints for numpy's default_rng; same seed, same take.
    sung: True for sung notes with vibrato, False for speech-like glides, None to draw it.
    base_hz: lowest note of the voice; None draws a voice between 95 Hz and 330 Hz.

  Returns:
    float32 `[time, 1]` with time = round(seconds * sample_rate), peak around -6 to -14 dBFS.
  """
  rng = np.random.default_rng(seed)
  num_samples = max(1, int(round(seconds * sample_rate)))
  sung, base_hz = _draw_voice(rng, sung, base_hz)
  f0, formants, gate, onsets = _pitch_and_gate(num_samples, sample_rate, rng, sung, base_hz)
  phase = 2 * np.pi * np.cumsum(f0) / sample_rate
  # Harmonic amplitudes change slowly: compute them at a control rate, interpolate per sample.
  hop = 64
  frame_pos = np.arange(0, num_samples, hop)
  sample_pos = np.arange(num_samples)
  k = np.arange(1, int(0.45 * sample_rate / np.min(f0)) + 1)
  fk = k[:, None] * f0[frame_pos][None, :]
  # Glottal tilt about -12 dB/octave, shaped by the formant envelope; band-limited below Nyquist.
  amp_db = -12 * np.log2(k)[:, None] + _envelope_db(fk, formants[frame_pos][None, :, :])
  amp = np.where(fk < 0.45 * sample_rate, 10 ** (amp_db / 20), 0.0)
  voiced = np.zeros(num_samples)
  for i in range(len(k)):
    voiced += np.interp(sample_pos, frame_pos, amp[i]) * np.sin(k[i] * phase + 0.3 * k[i])
  voiced *= gate
  breath = rng.standard_normal(num_samples) * gate * 0.01
  x = voiced / (np.max(np.abs(voiced)) + 1e-9)
  x = x + breath + _consonants(num_samples, sample_rate, rng, onsets)
  tt = np.arange(num_samples) / sample_rate
  rumble = 10 ** (-48 / 20) * np.sin(2 * np.pi * rng.uniform(30, 55) * tt + rng.uniform(0, 6))
  room = 10 ** (-62 / 20) * rng.standard_normal(num_samples)
  x = x + rumble + room
  peak_db = rng.uniform(-14, -6)
  x = x * 10 ** (peak_db / 20) / (np.max(np.abs(x)) + 1e-9)
  return x.astype(np.float32)[:, None]


def write_pairs(folder, num_pairs, sample_rate=44100, seconds=6.0, preset="default", seed=0):
  """Writes `num_pairs` demo pairs as `folder/raw/NAME.wav` and `folder/mixed/NAME.wav`.

  Take i is `synth_vocal(seed=(seed, i))` with a length varied by up to -30% around `seconds`
  (real sets have variable lengths); its mix is `mixnet.dsp.process(raw, sample_rate, preset)`.
  Files are 24-bit WAV written atomically. Existing files of the same names are replaced.

  Returns:
    The list of pair names, e.g. ["take_000", "take_001", ...].
  """
  raw_dir, mixed_dir = os.path.join(folder, "raw"), os.path.join(folder, "mixed")
  os.makedirs(raw_dir, exist_ok=True)
  os.makedirs(mixed_dir, exist_ok=True)
  names = []
  for i in range(num_pairs):
    name = f"take_{i:03d}"
    length = seconds * np.random.default_rng((seed, i, 1)).uniform(0.7, 1.0)
    raw = synth_vocal(length, sample_rate, seed=(seed, i))
    mixed = dsp.process(raw, sample_rate, preset)
    audio.save(os.path.join(raw_dir, name + ".wav"), raw, sample_rate)
    audio.save(os.path.join(mixed_dir, name + ".wav"), mixed, sample_rate)
    names.append(name)
  return names
