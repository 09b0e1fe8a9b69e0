r"""Mixes raw vocals: `python -m mixnet.infer IN [IN ...] --out_dir=DIR`.

  python -m mixnet.infer take1.wav take2.flac --out_dir=mixed --checkpoint=runs/base
  python -m mixnet.infer takes/*.wav --out_dir=mixed --preset=warm --format=flac

Each input `NAME.EXT` becomes `DIR/NAME.FORMAT` (`--format`, default wav; the file is written in
that format). Before any work the whole run is checked (`mixnet.infer.outputs`): an input is
never replaced, even with `--overwrite`; an existing file is replaced only with `--overwrite`;
two inputs that would write one output are refused. Then one line per file, and a total that
counts only the files written. Exit status 0 when every file was written, else 2, with
`error: <file>: <problem>` lines on stderr (a refused run names its first problem and counts the
others; a file that fails while mixing does not stop the others).

Engine: with `--checkpoint` the trained model: a model file (`python -m mixnet.export`), or a
training workdir or checkpoint folder (its best step; a corrupt step falls back to the newest
intact one, with a warning). A model that cannot be loaded at all is an error
(exit 2), unless `--fallback_to_dsp` accepts the DSP chain instead (one warning). Without
`--checkpoint` the DSP chain with `--preset` does the work.
"""

import os
import sys

import tqdm
from absl import app, flags, logging

from mixnet import audio, cli, dsp, errors, fileio, infer
from mixnet.infer import outputs

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for the mixed files (created if "
                               "missing): NAME.FORMAT for each input NAME.EXT.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Model file (.mixnet), training workdir "
                                  "or checkpoint folder; without it the DSP chain does the work.")
_FALLBACK = flags.DEFINE_bool("fallback_to_dsp", False, "If --checkpoint cannot be loaded, mix "
                              "with the DSP chain (one warning) instead of failing.")
_PRESET = flags.DEFINE_string("preset", "default", "DSP chain preset: one of "
                              f"{', '.join(sorted(dsp.PRESETS))}, or a preset .json file "
                              "(e.g. from python -m mixnet.export_preset).")
_FORMAT = flags.DEFINE_string("format", "wav", "Output format and extension: one of "
                              "wav, flac, aiff, ogg (Vorbis), mp3, where this libsndfile "
                              "writes it.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace existing output files; without it "
                               "a run with an existing output is refused before any work. An "
                               "input file is never replaced.")
_CEILING_DB = flags.DEFINE_float("ceiling_db", -1.0, "True-peak ceiling of the output limiter, "
                                 "dBFS.")
flags.mark_flag_as_required("out_dir")


def _extension(name):
  """The output extension for `--format=name`; OutputError if this libsndfile cannot write it."""
  extension = "." + name.lower().lstrip(".")
  writable = audio.writable_extensions()
  if extension not in writable:
    raise outputs.OutputError(f"--format={name}: cannot write {name} files here; choose one of "
                              f"{', '.join(e.lstrip('.') for e in writable)}")
  return extension


def _out_dir(path):
  """Creates `path` if missing and removes temporary files a killed run left in it."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise outputs.OutputError(f"{path}: --out_dir is a file, not a folder")
  os.makedirs(path, exist_ok=True)
  removed = fileio.remove_stale_temps(path)
  if removed:
    logging.info("removed %d temporary file(s) left by an earlier killed run in %s",
                 len(removed), path)
  return path


def _mix_all(plan, processor):
  """Mixes every (input, output) of `plan`; prints one line per file; returns failures."""
  failures = 0
  for in_path, out_path in tqdm.tqdm(plan, desc="mixing", unit="file"):
    try:
      s = infer.process_file(in_path, out_path, processor=processor, overwrite=_OVERWRITE.value)
    except errors.MixnetError as e:
      failures += 1
      tqdm.tqdm.write(f"error: {e}", file=sys.stderr)
      continue
    tqdm.tqdm.write(
        f"{s['output']}  engine={s['engine']}  {s['duration_s']:.1f} s audio in "
        f"{s['seconds']:.2f} s ({s['realtime_factor']:.0f}x real time)  peak "
        f"{s['peak_dbfs']:.1f} dBFS  {s['loudness_lufs']:.1f} LUFS")
  return failures


def main(argv):
  inputs = argv[1:]
  if not inputs:
    raise app.UsageError("give at least one input file: python -m mixnet.infer IN [IN ...] "
                         "--out_dir=DIR")
  if _FALLBACK.value and not _CHECKPOINT.value:
    raise app.UsageError("--fallback_to_dsp needs --checkpoint")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # library INFO chatter only with --verbosity
  try:
    dsp.get_preset(_PRESET.value)
  except ValueError as e:  # an unknown name, or a preset file that cannot be used
    cli.fail(e)
  extension = _extension(_FORMAT.value)
  out_dir = _out_dir(_OUT_DIR.value)
  plan = outputs.plan_outputs(inputs, out_dir, extension, overwrite=_OVERWRITE.value)
  processor = infer.AudioProcessor(use_ml_model=_CHECKPOINT.value is not None,
                                   model_path=_CHECKPOINT.value, preset=_PRESET.value,
                                   strict=not _FALLBACK.value, ceiling_db=_CEILING_DB.value)
  failures = _mix_all(plan, processor)
  print(f"{len(plan) - failures}/{len(plan)} files written to {out_dir}")
  if failures:
    cli.fail(f"{out_dir}: {failures} of {len(plan)} files not written (errors above)")


if __name__ == "__main__":
  cli.run(main)
