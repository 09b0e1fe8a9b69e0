"""`chain`: a learnable vocal chain (EQ, compressor, saturation, reverb, output level).

The model is the chain of `mixnet.diffdsp` with a few dozen parameters, each an unconstrained raw
number mapped to its physical range by a smooth map (`PARAMS` lists them with units). What it
learns is a `mixnet.dsp` preset (`mixnet.export_preset` writes it), so it is readable and
editable, and it covers what a receptive-field model cannot: a reverb tail as long as
`ir_seconds` and a compressor with the whole take's level.

The reverb's response is a noise shaped by per-band decays. The noise is fixed by default
(`learn_noise=False`: a few dozen parameters). With `learn_noise=True` it is learned too (one
parameter per tap and channel): a random noise, however well its decays fit, leaves a mix's
spectrogram as far from the target as no reverb at all, because the target's fine structure
follows its reverb's echoes; the learned noise takes on that structure while the decay times,
levels, pre-delay and send stay the settings a user reads and edits.

Input gain staging happens outside the model: the audio it is given must already be at
`input_lufs` (`mixnet.diffdsp.gain.staging_gain_db`, measured on the whole take), so thresholds
are relative to the take's loudness, not the crop's.

Chunking: every stage is causal except the compressor's control frames (a frame's peak includes
up to `period - 1` later samples), so `context` is (EQ FIR + two control frames + compressor
memory + reverb response, period - 1). The compressor has infinite memory in principle; the
bound used is `mixnet.diffdsp.dynamics.memory_samples` of the slowest allowed attack/release
(state differences shrink below a 1e-4 relative gain error by then). `alignment` is the control
period: frames sit on a grid.
"""

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mixnet import dsp
from mixnet.diffdsp import core, dynamics, filters, gain, reverberation, saturation
from mixnet.dsp import dynamics as np_dynamics
from mixnet.models import layers

# The slowest compressor attack allowed; with `max_release_ms` it bounds the compressor memory.
MAX_ATTACK_MS = 100.0
# The low-pass's highest setting, a fraction of the sample rate: there it passes the whole band.
OPEN_LOWPASS = 0.499
# The learned reverb noise's parameter (`learn_noise`).
NOISE_KEY = "reverb_noise"


@dataclasses.dataclass(frozen=True)
class Param:
  """One learned setting: `stage.name` in (low, high) `unit`, mapped linearly or in log."""
  stage: str
  name: str
  unit: str
  low: float
  high: float
  init: object  # float, or a tuple of floats (one per band)
  log: bool = False

  @property
  def key(self):
    return f"{self.stage}_{self.name}"

  def value(self, raw):
    return (core.log_bounded if self.log else core.bounded)(raw, self.low, self.high)

  def raw_init(self):
    invert = core.log_bounded_inverse if self.log else core.bounded_inverse
    return invert(np.asarray(self.init, np.float64), self.low, self.high)


def params_table(module):
  """The chain's parameters (`Param`s) for this module's sample rate, bands and IR length."""
  nyquist_safe = min(20000.0, 0.44 * module.sample_rate)
  peaks = np.geomspace(250.0, 5000.0, module.num_peaks)
  bands = len(reverberation.band_edges(module.sample_rate, module.reverb_edges_hz)) + 1
  return (
      Param("eq", "highpass_hz", "Hz", 15.0, 600.0, 20.0, log=True),
      Param("eq", "low_shelf_hz", "Hz", 40.0, 800.0, 150.0, log=True),
      Param("eq", "low_shelf_db", "dB", -18.0, 18.0, 0.0),
      Param("eq", "peak_hz", "Hz", 60.0, 0.8 * nyquist_safe, tuple(peaks), log=True),
      Param("eq", "peak_db", "dB", -18.0, 18.0, (0.0,) * module.num_peaks),
      Param("eq", "peak_q", "", 0.3, 6.0, (1.0,) * module.num_peaks, log=True),
      Param("eq", "high_shelf_hz", "Hz", 1000.0, 0.8 * nyquist_safe, 0.4 * nyquist_safe,
            log=True),
      Param("eq", "high_shelf_db", "dB", -18.0, 18.0, 0.0),
      # Up to just below Nyquist, where the RBJ low-pass is flat (0.499 x rate: within 0.01 dB
      # up to 0.49 x rate), and starting there: most mixes have no low-pass, and one held at
      # 19 kHz (the old bound) cost the quality style's learned EQ most of its score
      # (`benchmarks/chain.py --task=attribution`), with a high shelf pushed up to compensate.
      Param("eq", "lowpass_hz", "Hz", 1500.0, OPEN_LOWPASS * module.sample_rate,
            0.995 * OPEN_LOWPASS * module.sample_rate, log=True),
      Param("compressor", "threshold_db", "dBFS", -60.0, 0.0, -20.0),
      Param("compressor", "ratio", ":1", 1.0, 20.0, 2.0, log=True),
      Param("compressor", "knee_db", "dB", 0.5, 24.0, 6.0),
      Param("compressor", "attack_ms", "ms", 0.5, MAX_ATTACK_MS, 10.0, log=True),
      Param("compressor", "release_ms", "ms", 10.0, module.max_release_ms,
            min(100.0, 0.5 * module.max_release_ms), log=True),
      Param("compressor", "makeup_db", "dB", -12.0, 24.0, 0.0),
      Param("saturation", "drive_db", "dB", 0.0, 30.0, 6.0),
      Param("saturation", "mix", "", 0.0, 1.0, 0.1),
      Param("reverb", "rt60_s", "s", 0.05, module.ir_seconds,
            (min(0.6, 0.5 * module.ir_seconds),) * bands, log=True),
      Param("reverb", "band_db", "dB", -30.0, 12.0, (0.0,) * bands),
      Param("reverb", "predelay_ms", "ms", 0.0, module.max_predelay_ms, 20.0),
      Param("reverb", "buildup_ms", "ms", 0.1, 200.0, 5.0, log=True),
      Param("reverb", "send_db", "dB", -60.0, 6.0, -20.0),
      Param("output", "gain_db", "dB", -30.0, 30.0, 0.0),
  )


def physical(module, params):
  """Raw parameters -> `{stage: {name: value}}` in physical units (jnp arrays).

  With `learn_noise`, `out["reverb"]["noise"]` is the learned noise, `[channels, taps]`.
  """
  out = {}
  for p in params_table(module):
    out.setdefault(p.stage, {})[p.name] = p.value(params[p.key])
  if module.learn_noise:
    out["reverb"]["noise"] = params[NOISE_KEY]
  return out


def ir_length(module):
  """Taps of the reverb tail (before the pre-delay)."""
  return int(round(module.ir_seconds * module.sample_rate))


def impulse_response(module, reverb):
  """The reverb's wet response for physical `reverb` parameters, `[taps, channels]`."""
  edges = reverberation.band_edges(module.sample_rate, module.reverb_edges_hz)
  if "noise" in reverb:
    noise = reverberation.split_bands(reverb["noise"], module.sample_rate, edges)
  else:
    noise = reverberation.band_noise(ir_length(module), module.channels,
                                     float(module.sample_rate), edges, module.noise_seed)
  return reverberation.impulse_response(noise, module.sample_rate, reverb["rt60_s"],
                                        reverb["band_db"], reverb["predelay_ms"],
                                        module.max_predelay_ms, reverb["buildup_ms"])


def responses(module, settings):
  """(EQ FIR `[taps, 1]`, reverb response `[taps, channels]`) of physical `settings`."""
  return (filters.eq_fir(settings["eq"], module.sample_rate, eq_fir_taps(module)),
          impulse_response(module, settings["reverb"]))


def apply_chain(module, settings, fir_and_ir, audio_btc):
  """Runs the chain on `[batch, time, channels]`.

  Args:
    module: the `VocalChain` (sample rate, compressor method).
    settings: physical parameters (from `physical`).
    fir_and_ir: `responses(module, settings)`.
    audio_btc: float32 `[batch, time, channels]`.
  """
  fir, ir = fir_and_ir
  x = core.fft_convolve(audio_btc, fir)
  x = dynamics.compress(x, module.sample_rate, settings["compressor"], module.compressor_method)
  sat = settings["saturation"]
  x = saturation.saturate(x, sat["drive_db"], sat["mix"])
  x = reverberation.reverb(x, ir, settings["reverb"]["send_db"])
  return gain.output_level(x, settings["output"]["gain_db"])


def inference_fn(module, params):
  """`audio_btc -> module.apply({"params": params}, audio_btc)` for fixed `params`.

  The settings, the EQ's FIR and the reverb's response depend on the parameters alone, so they
  are computed here once instead of in every chunk's call (the response alone took about a
  fifth of a 32 s chunk's time).
  """
  settings = physical(module, params)
  fir_and_ir = jax.block_until_ready(responses(module, settings))
  return lambda audio_btc: apply_chain(module, settings, fir_and_ir,
                                       audio_btc.astype(jnp.float32))


class VocalChain(nn.Module):
  """The learnable chain; see the module docstring.

  Attributes:
    channels: audio channels (the compressor is linked; each channel has its own reverb noise).
    sample_rate: Hz of the audio (frequencies and times are converted with it).
    num_peaks: peaking EQ bands between the shelves.
    reverb_edges_hz: edges of the reverb's decay bands (those below 0.45 x rate are used).
    ir_seconds: length of the reverb tail (also the largest RT60 it can learn).
    max_predelay_ms: largest reverb pre-delay.
    max_release_ms: largest compressor release (sets the compressor-memory part of `context`).
    eq_fir_seconds: length of the frequency-sampled EQ's FIR (rounded up to a power of two).
    compressor_method: "scan" or "assoc" (`mixnet.diffdsp.dynamics`).
    noise_seed: seed of the reverb's noise (fixed, or the learned noise's initial value).
    learn_noise: learn the reverb's noise (`[channels, ir taps]` more parameters), so the
      response can take the fine structure of the user's reverb; its decays stay parametric.
    input_lufs: loudness the input is expected at (gain staging done outside the model).
  """
  channels: int = 1
  sample_rate: float = 44100.0
  num_peaks: int = 3
  reverb_edges_hz: Sequence[float] = reverberation.DEFAULT_EDGES_HZ
  ir_seconds: float = 2.0
  max_predelay_ms: float = 100.0
  max_release_ms: float = 300.0
  eq_fir_seconds: float = 0.18
  compressor_method: str = "scan"
  noise_seed: int = 0
  learn_noise: bool = False
  input_lufs: float = -20.0

  @nn.compact
  def __call__(self, audio_btc):
    """Maps float32 `[batch, time, channels]` (at `input_lufs`) to the same shape."""
    layers.check_channels(self, audio_btc)
    params = {}
    for p in params_table(self):
      raw = p.raw_init()
      params[p.key] = self.param(p.key, lambda _, r=raw: jnp.asarray(r, jnp.float32))
    if self.learn_noise:
      params[NOISE_KEY] = self.param(NOISE_KEY, lambda _: jnp.asarray(reverberation.white_noise(
          ir_length(self), self.channels, self.noise_seed)))
    settings = physical(self, params)
    return apply_chain(self, settings, responses(self, settings), audio_btc.astype(jnp.float32))


def _eq_bands(eq):
  bands = [dsp.EqBand("highpass", eq["highpass_hz"]),
           dsp.EqBand("low_shelf", eq["low_shelf_hz"], eq["low_shelf_db"])]
  bands += [dsp.EqBand("peaking", f, g, q)
            for f, g, q in zip(eq["peak_hz"], eq["peak_db"], eq["peak_q"], strict=True)]
  return tuple(bands + [dsp.EqBand("high_shelf", eq["high_shelf_hz"], eq["high_shelf_db"]),
                        dsp.EqBand("lowpass", eq["lowpass_hz"])])


def to_preset(module, params, name, ir_file, output_lufs):
  """The learned chain as a `mixnet.dsp.Preset` plus its reverb's impulse response.

  Every stage maps one to one (EQ bands as RBJ biquads, the same compressor, the tanh shaper
  with no bias, the reverb as a convolution with the learned response), except the output
  level: the preset normalises to `output_lufs` instead of applying the learned constant gain,
  so a user's edit of another stage does not change the delivered loudness.

  Returns:
    (preset, ir_tc): `ir_tc` is float32 `[taps, channels]` at `module.sample_rate`, to be
    written to `ir_file` (the name the preset refers to).
  """
  learned = physical(module, params)
  ir_tc = np.asarray(impulse_response(module, learned["reverb"]))
  learned["reverb"].pop("noise", None)  # it is in the response
  settings = jax.tree.map(lambda v: np.asarray(v, np.float64).tolist(), learned)
  sat = settings["saturation"]
  preset = dsp.Preset(
      name=name,
      input_lufs=float(module.input_lufs),
      eq=_eq_bands(settings["eq"]),
      compressor=dsp.CompressorParams(**settings["compressor"]),
      saturation=dsp.SaturationParams(drive_db=sat["drive_db"], mix=sat["mix"], bias=0.0),
      convolution_reverb=dsp.ConvolutionReverbParams(ir_file=ir_file,
                                                     send_db=settings["reverb"]["send_db"]),
      output_lufs=float(output_lufs))
  return preset, ir_tc


def settings_table(module, params):
  """The learned settings as text, one `stage  name  value unit` line per parameter."""
  learned = physical(module, params)
  lines = []
  for p in params_table(module):
    values = np.atleast_1d(np.asarray(learned[p.stage][p.name], np.float64))
    text = ", ".join(f"{v:.4g}" for v in values)
    lines.append(f"{p.stage:<11} {p.name:<14} {text} {p.unit}".rstrip())
  return "\n".join(lines)


def input_lufs(model_config):
  """Reference loudness (LUFS) a registry model wants its input staged to, or None.

  `chain` and `hybrid` expect every take brought to this loudness, measured on the whole take,
  before cropping (training) or chunking (inference); other models take the raw level.
  """
  if model_config.name == "chain":
    return float(model_config.chain.input_lufs)
  if model_config.name == "hybrid":
    return float(model_config.hybrid.chain.input_lufs)
  return None


def eq_fir_taps(module):
  return filters.fir_size(module.sample_rate, module.eq_fir_seconds)


def alignment(module):
  """The compressor's control period: outputs commute with shifts by multiples of it."""
  return np_dynamics.control_period(module.sample_rate)


def context(module):
  """(left, right) input samples before / after an output sample that can change it."""
  period = alignment(module)
  memory = dynamics.memory_samples(max(MAX_ATTACK_MS, module.max_release_ms),
                                   module.sample_rate)
  reverb_taps = reverberation.ir_taps(ir_length(module), module.sample_rate,
                                      module.max_predelay_ms)
  return eq_fir_taps(module) + 2 * period + memory + reverb_taps, period - 1
