"""`preset_config` of one `AudioProcessor.process_vocal` call -> `mixnet.engines.Settings`.

Accepted forms:
  None                 the processor's preset (DSP); the model's own loudness and ceiling
  a preset name        a built-in `mixnet.dsp.PRESETS` entry
  a `.json` path       a learned or edited preset file (`mixnet.dsp.load_preset`)
  a `dsp.Preset`
  a dict               preset fields over the processor's preset, plus `strength`

A whole preset (name, file or `Preset`) is the DSP chain, and for a model its `output_lufs` and
`ceiling_db`. A dict sets only the fields it names: for a model, `output_lufs`, `ceiling_db`
and `strength` (0-1) matter; the chain's other fields shape the DSP chain only.
"""

import dataclasses
import os

from mixnet import dsp, errors
from mixnet.dsp import presets
from mixnet.engines import Settings

STRENGTH = "strength"


class SettingsError(errors.MixnetError):
  """A `preset_config` that cannot be used: the message says which key or value, and why."""


def known_keys():
  """The keys a `preset_config` dict may hold, sorted."""
  return sorted([f.name for f in dataclasses.fields(dsp.Preset)] + [STRENGTH])


def _strength(value):
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
    raise SettingsError(f"preset_config: strength must be a number from 0 to 1, got {value!r}")
  return float(value)


def _from_dict(config, base):
  """Settings from a dict of preset fields applied over the `Preset` `base`."""
  unknown = sorted(set(config) - set(known_keys()))
  if unknown:
    raise SettingsError(f"preset_config: unknown key(s) {', '.join(map(repr, unknown))}; "
                        f"known keys: {', '.join(known_keys())}")
  fields = {k: v for k, v in config.items() if k != STRENGTH}
  preset = base
  if fields:
    merged = {**dataclasses.asdict(base), **fields}
    if isinstance(merged.get("eq"), tuple):  # `dataclasses.asdict` of a Preset keeps a tuple
      merged["eq"] = list(merged["eq"])
    preset = presets.preset_from_dict(merged, "preset_config")
  return Settings(preset, output_lufs=fields.get("output_lufs"),
                  ceiling_db=fields.get("ceiling_db"),
                  strength=_strength(config.get(STRENGTH, 1.0)))


def resolve(preset_config, base):
  """The `Settings` that `preset_config` asks for, over the processor's `Preset` `base`.

  Raises:
    SettingsError: an unknown key (the message lists the known ones), a bad strength, or a
      value of no accepted form.
    mixnet.dsp.PresetError: a preset file or field that cannot be used.
  """
  if preset_config is None:
    return Settings(base)
  if isinstance(preset_config, dict):
    return _from_dict(preset_config, base)
  if isinstance(preset_config, (str, os.PathLike, dsp.Preset)):
    try:
      preset = dsp.get_preset(preset_config)
    except ValueError as e:
      if isinstance(e, errors.MixnetError):
        raise
      raise SettingsError(f"preset_config: {e}") from e
    return Settings(preset, output_lufs=preset.output_lufs, ceiling_db=preset.ceiling_db)
  hint = (" (the sample rate is the keyword sample_rate=)"
          if isinstance(preset_config, (int, float)) else "")
  raise SettingsError(f"preset_config: expected None, a preset name, a .json preset file, a "
                      f"Preset or a dict, got {type(preset_config).__name__} "
                      f"{preset_config!r}{hint}")
