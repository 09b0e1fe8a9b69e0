"""Vocal chain presets: frozen dataclasses of physical stage parameters, data only.

Thresholds are in dBFS of the signal after input gain staging: `process` first brings every take
to `Preset.input_lufs`, so a preset behaves the same on quiet and hot recordings.

A preset can also live in a JSON file (`save_preset` / `load_preset`; `get_preset` takes a path
ending in `.json`): one object with the `Preset` fields, each stage an object of its parameters
or null, `eq` a list of bands. This is how a learned chain is handed to the user
(`python -m mixnet.export_preset`), who can edit the numbers; a convolution reverb's impulse
response is a WAV file named relative to the JSON file's folder.
"""

import dataclasses
import json
import os

from mixnet import errors, fileio
from mixnet.dsp.filters import EqBand


class PresetError(errors.MixnetError):
  """A preset file is missing, not JSON, or has unknown or ill-typed fields."""


@dataclasses.dataclass(frozen=True)
class DeEsserParams:
  freq_hz: float = 6500.0
  threshold_db: float = -30.0
  ratio: float = 4.0
  attack_ms: float = 1.0
  release_ms: float = 60.0


@dataclasses.dataclass(frozen=True)
class CompressorParams:
  threshold_db: float = -20.0
  ratio: float = 3.0
  knee_db: float = 6.0
  attack_ms: float = 5.0
  release_ms: float = 80.0
  makeup_db: float = 0.0


@dataclasses.dataclass(frozen=True)
class SaturationParams:
  drive_db: float = 6.0
  mix: float = 0.3
  bias: float = 0.0


@dataclasses.dataclass(frozen=True)
class DelayParams:
  time_ms: float = 250.0
  feedback: float = 0.25
  mix: float = 0.08


@dataclasses.dataclass(frozen=True)
class ReverbParams:
  rt60_s: float = 1.4
  predelay_ms: float = 30.0
  damping: float = 0.4
  mix: float = 0.15


@dataclasses.dataclass(frozen=True)
class ConvolutionReverbParams:
  """A reverb given by its impulse response, added to the dry signal.

  Attributes:
    ir_file: WAV file of the wet response (mono or stereo; resampled to the audio's rate).
      `load_preset` makes a relative path relative to the JSON file's folder.
    send_db: level of the convolved (wet) signal added to the dry one, dB.
  """
  ir_file: str
  send_db: float = -20.0


@dataclasses.dataclass(frozen=True)
class Preset:
  """A whole vocal chain. Stages set to None (or an empty EQ) are skipped.

  Attributes:
    name: short identifier.
    input_lufs: loudness the take is brought to before the chain (gain staging).
    eq: EQ bands applied first (high-pass, tone), in order.
    de_esser, compressor, saturation, delay, reverb, convolution_reverb: stage parameters, in
      chain order.
    output_lufs: loudness the result is normalised to.
    ceiling_db: true-peak limiter ceiling (dBTP); the output never exceeds it.
    limiter_release_ms: recovery time constant of the limiter.
  """
  name: str
  input_lufs: float = -20.0
  eq: tuple[EqBand, ...] = ()
  de_esser: DeEsserParams | None = None
  compressor: CompressorParams | None = None
  saturation: SaturationParams | None = None
  delay: DelayParams | None = None
  reverb: ReverbParams | None = None
  convolution_reverb: ConvolutionReverbParams | None = None
  output_lufs: float = -16.0
  ceiling_db: float = -1.0
  limiter_release_ms: float = 50.0


_PRESETS = (
    Preset(
        name="default",
        eq=(EqBand("highpass", 90.0),
            EqBand("peaking", 300.0, -2.0, 1.0),
            EqBand("peaking", 3000.0, 2.0, 1.0),
            EqBand("high_shelf", 10000.0, 2.5)),
        de_esser=DeEsserParams(),
        compressor=CompressorParams(),
        saturation=SaturationParams(),
        delay=DelayParams(),
        reverb=ReverbParams(),
    ),
    Preset(
        name="warm",
        eq=(EqBand("highpass", 70.0),
            EqBand("low_shelf", 200.0, 2.5),
            EqBand("peaking", 3500.0, -1.5, 1.2),
            EqBand("high_shelf", 8000.0, -2.0)),
        de_esser=DeEsserParams(threshold_db=-28.0, ratio=3.0),
        compressor=CompressorParams(threshold_db=-22.0, ratio=3.0, knee_db=8.0, attack_ms=15.0,
                                    release_ms=150.0),
        saturation=SaturationParams(drive_db=10.0, mix=0.5, bias=0.2),
        reverb=ReverbParams(rt60_s=1.8, predelay_ms=25.0, damping=0.6, mix=0.18),
    ),
    Preset(
        name="bright",
        eq=(EqBand("highpass", 110.0),
            EqBand("peaking", 250.0, -3.0, 1.0),
            EqBand("peaking", 4500.0, 3.0, 0.9),
            EqBand("high_shelf", 12000.0, 5.0)),
        de_esser=DeEsserParams(threshold_db=-32.0, ratio=6.0),
        compressor=CompressorParams(threshold_db=-20.0, ratio=4.0, knee_db=4.0, attack_ms=3.0,
                                    release_ms=60.0),
        saturation=SaturationParams(drive_db=4.0, mix=0.2),
        delay=DelayParams(time_ms=180.0, feedback=0.25, mix=0.1),
        reverb=ReverbParams(rt60_s=1.2, predelay_ms=35.0, damping=0.2, mix=0.12),
    ),
    Preset(
        name="intimate",
        eq=(EqBand("highpass", 80.0),
            EqBand("low_shelf", 150.0, 1.5),
            EqBand("peaking", 2500.0, 1.0, 1.0),
            EqBand("high_shelf", 10000.0, 1.5)),
        de_esser=DeEsserParams(threshold_db=-30.0, ratio=3.0),
        compressor=CompressorParams(threshold_db=-24.0, ratio=2.0, knee_db=10.0, attack_ms=20.0,
                                    release_ms=200.0),
        saturation=SaturationParams(drive_db=3.0, mix=0.2),
        reverb=ReverbParams(rt60_s=0.6, predelay_ms=10.0, damping=0.5, mix=0.06),
        output_lufs=-18.0,
    ),
    Preset(
        name="radio",
        eq=(EqBand("highpass", 300.0),
            EqBand("lowpass", 3800.0),
            EqBand("peaking", 1500.0, 4.0, 1.0)),
        compressor=CompressorParams(threshold_db=-26.0, ratio=8.0, knee_db=3.0, attack_ms=2.0,
                                    release_ms=50.0, makeup_db=0.0),
        saturation=SaturationParams(drive_db=18.0, mix=0.8),
    ),
)

PRESETS = {preset.name: preset for preset in _PRESETS}


_STAGES = {"de_esser": DeEsserParams, "compressor": CompressorParams,
           "saturation": SaturationParams, "delay": DelayParams, "reverb": ReverbParams,
           "convolution_reverb": ConvolutionReverbParams}


def _fields(cls, data, path, where):
  if not isinstance(data, dict):
    raise PresetError(f"{path}: {where} must be an object, got {type(data).__name__}")
  known = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(data) - set(known))
  if unknown:
    raise PresetError(f"{path}: {where} has unknown fields {unknown}; expected {sorted(known)}")
  for key, value in data.items():
    wanted = str if known[key].type in (str, "str") else (int, float)
    if not isinstance(value, wanted) or isinstance(value, bool):
      raise PresetError(f"{path}: {where}.{key} must be a {'string' if wanted is str else 'number'}"
                        f", got {value!r}")
  try:
    return cls(**data)
  except TypeError as e:
    raise PresetError(f"{path}: {where}: {e}") from e


def preset_from_dict(data, path):
  """A `Preset` from its JSON object; `path` names the file in error messages."""
  if not isinstance(data, dict):
    raise PresetError(f"{path}: a preset file holds one JSON object")
  data = dict(data)
  stages = {k: None if data.get(k) is None else _fields(cls, data[k], path, k)
            for k, cls in _STAGES.items() if k in data}
  eq = data.pop("eq", [])
  if not isinstance(eq, list):
    raise PresetError(f"{path}: eq must be a list of bands")
  bands = tuple(_fields(EqBand, band, path, f"eq[{i}]") for i, band in enumerate(eq))
  top = {k: v for k, v in data.items() if k not in _STAGES}
  top.setdefault("name", os.path.splitext(os.path.basename(path))[0])
  return dataclasses.replace(_fields(Preset, top, path, "preset"), eq=bands, **stages)


def load_preset(path):
  """Reads a preset JSON file; a convolution reverb's `ir_file` becomes an absolute path.

  Raises:
    PresetError: missing or unreadable file, not JSON, unknown or ill-typed fields, or an
      impulse response file that does not exist.
  """
  path = os.fspath(path)
  try:
    with open(path) as f:
      data = json.load(f)
  except OSError as e:
    raise PresetError(f"{path}: cannot read preset file ({e.strerror})") from e
  except json.JSONDecodeError as e:
    raise PresetError(f"{path}: not valid JSON ({e})") from e
  preset = preset_from_dict(data, path)
  if preset.convolution_reverb is not None:
    folder = os.path.dirname(os.path.abspath(path))
    ir_file = os.path.join(folder, preset.convolution_reverb.ir_file)
    if not os.path.isfile(ir_file):
      raise PresetError(f"{path}: convolution_reverb.ir_file {ir_file} does not exist")
    preset = dataclasses.replace(preset, convolution_reverb=dataclasses.replace(
        preset.convolution_reverb, ir_file=ir_file))
  return preset


def save_preset(preset, path):
  """Writes `preset` as indented JSON, atomically (an `ir_file` is written as given)."""
  fileio.write_json(path, dataclasses.asdict(preset))


def get_preset(preset):
  """Returns the `Preset` named `preset`, read from `preset` if it is a `.json` path, or
  `preset` itself if it already is one.

  Raises:
    ValueError: unknown name; the message lists the valid ones.
    PresetError: the JSON file cannot be used (see `load_preset`).
  """
  if isinstance(preset, Preset):
    return preset
  if isinstance(preset, (str, os.PathLike)) and os.fspath(preset).endswith(".json"):
    return load_preset(preset)
  if preset not in PRESETS:
    raise ValueError(f"unknown DSP preset {preset!r}; valid presets: {', '.join(PRESETS)}")
  return PRESETS[preset]
