r"""Writes a trained model as one file that loads without the workdir or the training data.

  python -m mixnet.export --checkpoint=WORKDIR --out=models/best_model.mixnet

`--checkpoint` is a training workdir (its best step, else its latest), a `best/` or
`checkpoints/` folder, or one step folder. The file format is described in `mixnet.model_file`.
Like every mixnet output, an existing file is replaced only with `--overwrite`.
"""

import os

from absl import app, flags

from mixnet import cli, model_file

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Training workdir or checkpoint folder.",
                                  required=True)
_OUT = flags.DEFINE_string("out", None, "Model file to write (conventionally *.mixnet).",
                           required=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace --out if it exists.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  out = _OUT.value
  if os.path.isdir(out):
    cli.fail(f"{out}: is a folder; --out names the model file to write")
  if os.path.exists(out) and not _OVERWRITE.value:
    cli.fail(f"{out}: exists; pass --overwrite to replace it")
  params, meta, source = model_file.load_model(_CHECKPOINT.value)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  model_file.save(out, params, meta)
  print(f"wrote {out}: {meta['model']} model, step {meta['step']}, from {source}")


if __name__ == "__main__":
  cli.run(main)
