"""Reading Orbax checkpoints quietly: library chatter off, a failure in one line.

Orbax logs a dozen INFO/WARNING lines per checkpoint it opens, and a restore that fails on a
corrupt file raises an error embedding TensorStore's whole JSON spec, then prints more of the same
from reads it abandoned. Inside `quiet()` Orbax's records below ERROR are dropped; `reason` turns
the error into one short line; the abandoned reads' leftovers are dropped (see
`_drop_failed_restore_leftovers`).
"""

import contextlib
import os
import sys

from absl import logging

_MAX_REASON = 200  # characters of a library's error message kept


class _DropOrbaxChatter:
  """absl log filter: drops Orbax's records below ERROR."""

  def filter(self, record):
    orbax = f"{os.sep}orbax{os.sep}" in record.pathname
    return record.levelno >= logging.converter.STANDARD_ERROR or not orbax


def _drop_failed_restore_leftovers(unraisable):
  """sys.unraisablehook: after a failed restore, TensorStore completes its other reads into
  Orbax's closed event loop ("Event loop is closed") and the abandoned read coroutines are
  finalized with the whole TensorStore spec in their message. Nothing can catch either; both are
  dropped (the restore itself already raised). Anything else goes to the previous hook."""
  exc = unraisable.exc_value
  code = getattr(unraisable.object, "cr_code", None)
  if (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed") or (
      code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename):
    return
  _drop_failed_restore_leftovers.previous(unraisable)


@contextlib.contextmanager
def quiet():
  """Drops Orbax's INFO/WARNING log records inside the block (errors still show), and from then
  on the leftovers of a failed restore (`_drop_failed_restore_leftovers`)."""
  if sys.unraisablehook is not _drop_failed_restore_leftovers:
    _drop_failed_restore_leftovers.previous = sys.unraisablehook
    sys.unraisablehook = _drop_failed_restore_leftovers
  chatter = _DropOrbaxChatter()
  logger = logging.get_absl_logger()
  logger.addFilter(chatter)
  try:
    yield
  finally:
    logger.removeFilter(chatter)


def reason(e):
  """A library exception as one short line (TensorStore errors embed a whole JSON spec)."""
  text = " ".join(str(e).split())
  if len(text) > _MAX_REASON:
    text = text[:_MAX_REASON].rstrip() + "..."
  return f"{type(e).__name__}: {text}"
