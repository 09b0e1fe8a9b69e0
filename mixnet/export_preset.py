r"""Writes the learned vocal chain of a `chain` or `hybrid` run as an editable `mixnet.dsp` preset.

  python -m mixnet.export_preset --checkpoint=runs/chain --out=my_style.json

writes `my_style.json` (the preset: EQ bands, compressor, saturation, convolution reverb, input
and output loudness, limiter) and `my_style_ir.wav` beside it (the learned reverb's impulse
response, 32-bit float, named in the JSON relative to its folder), and prints the settings with
their units. The preset runs without JAX:

  python -m mixnet.infer take.wav --out_dir=mixed --preset=my_style.json
  infer.AudioProcessor(preset="my_style.json"), dsp.process(raw_tc, rate, "my_style.json")

Edit any number in the JSON (or remove a stage by setting it to null) and run it again to hear
the change. The output loudness is the training mixes' median (saved with the checkpoint) so it
stays put when other stages are edited. For a `hybrid` run only the chain is exported: the
U-Net's residual correction has no preset form.
"""

import os

from absl import app, flags, logging

from mixnet import cli, errors

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Model file, training workdir or checkpoint "
                                  "folder of a chain or hybrid run.")
_OUT = flags.DEFINE_string("out", None, "Preset file to write (.json); the impulse response "
                           "goes beside it as NAME_ir.wav.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace existing preset/IR files.")
flags.mark_flags_as_required(["checkpoint", "out"])
_DEFAULT_OUTPUT_LUFS = -16.0


class ExportError(errors.MixnetError):
  """The checkpoint has no learned chain, or the output cannot be written."""


def _load_chain(path):
  """(vocal chain module, its params, meta) from a chain or hybrid model file or checkpoint."""
  import ml_collections

  from mixnet import model_file, models

  params, meta, _ = model_file.load_model(path)
  model_config = ml_collections.ConfigDict(meta["config"]).model
  found = models.learned_chain(model_config, params)
  if found is None:
    raise ExportError(f"{path}: model '{model_config.name}' has no learned chain to export; "
                      "train with experiments/chain.py or experiments/hybrid.py")
  return (*found, meta)


def _check_out(out, overwrite):
  if not out.endswith(".json"):
    raise app.UsageError(f"--out={out}: the preset file name must end in .json")
  ir_path = out[:-len(".json")] + "_ir.wav"
  folder = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(folder):
    raise ExportError(f"{out}: folder {folder} does not exist")
  for path in (out, ir_path):
    if os.path.exists(path) and not overwrite:
      raise ExportError(f"{path}: exists; pass --overwrite to replace it")
  return ir_path


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  ir_path = _check_out(_OUT.value, _OVERWRITE.value)
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # library INFO chatter only with --verbosity
  from mixnet import audio, dsp
  from mixnet.models import chain

  module, params, meta = _load_chain(_CHECKPOINT.value)
  output_lufs = meta.get("data", {}).get("train_mixed_lufs_median") or _DEFAULT_OUTPUT_LUFS
  name = os.path.splitext(os.path.basename(_OUT.value))[0]
  preset, ir_tc = chain.to_preset(module, params, name, os.path.basename(ir_path), output_lufs)
  audio.save(ir_path, ir_tc, int(module.sample_rate), subtype="FLOAT")
  dsp.save_preset(preset, _OUT.value)
  print(chain.settings_table(module, params))
  print(f"wrote {_OUT.value} and {ir_path} (output {output_lufs:.1f} LUFS)")


if __name__ == "__main__":
  cli.run(main)
