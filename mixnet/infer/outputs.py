"""Output names of a `python -m mixnet.infer` run, and every reason to refuse them, up front.

Rule: input `DIR/NAME.EXT` is written to `OUT_DIR/NAME.FORMAT` (`--format`, default wav). Before
any audio is read or any model loaded, the whole list is checked, and the run is refused (nothing
written) if any output:
- is one of the run's inputs (also through a symlink, relative path or hard link): an input is
  never replaced, even with `--overwrite`;
- would be written by two inputs (the same NAME from different folders or extensions, also
  differing only in letter case, which is one file on macOS and Windows): they would overwrite
  each other;
- already exists, unless `--overwrite`; or is a folder;
- names a format this libsndfile cannot write.
An input listed twice (also by two paths to one file) is mixed once.
"""

import collections
import os

from absl import logging

from mixnet import audio, errors, infer


class OutputError(errors.MixnetError):
  """The outputs a run asks for cannot all be written; nothing has been written."""


def output_path(in_path, out_dir, extension):
  """`out_dir/NAME.extension` for input `.../NAME.EXT`."""
  stem = os.path.splitext(os.path.basename(os.fspath(in_path)))[0]
  return os.path.join(out_dir, stem + extension)


def _unique(inputs):
  """`inputs` without repeats of one file (the first path of each is kept)."""
  kept = []
  for path in inputs:
    twin = next((k for k in kept if audio.same_file(k, path)), None)
    if twin is None:
      kept.append(path)
    else:
      logging.warning("%s: listed twice (also as %s); mixing it once", path, twin)
  return kept


def _problems(plan, overwrite):
  """One `file: problem` string per output of `plan` that cannot be written."""
  problems = []
  by_name = collections.defaultdict(list)
  for in_path, out_path in plan:
    by_name[out_path.casefold()].append((in_path, out_path))
  for group in by_name.values():
    if len(group) > 1:
      problems.append(
          f"{group[0][1]}: would be written by each of {', '.join(i for i, _ in group)}; "
          "rename them or mix them into separate --out_dir folders")
  inputs = [in_path for in_path, _ in plan]
  for in_path, out_path in plan:
    try:
      audio.ensure_not_input(out_path, *inputs)
      infer.check_output(out_path, in_path, overwrite)
    except audio.AudioError as e:
      problems.append(str(e))
  return problems


def plan_outputs(inputs, out_dir, extension, overwrite=False):
  """[(input, output)] of a run, checked (see the module docstring) before any work.

  Args:
    inputs: input file paths, as given.
    out_dir: an existing output folder.
    extension: output extension with its dot (".wav", ".flac", ...).
    overwrite: existing outputs may be replaced (inputs never).

  Raises:
    OutputError: one or more outputs are refused; the message names the first and counts the
      rest.
  """
  plan = [(p, output_path(p, out_dir, extension)) for p in _unique(inputs)]
  problems = _problems(plan, overwrite)
  if problems:
    more = f" (and {len(problems) - 1} more problem(s) like it)" if len(problems) > 1 else ""
    raise OutputError(f"{problems[0]}{more}; nothing was written")
  return plan
