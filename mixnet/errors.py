"""The one base class of the problems a user can fix: bad files, folders, settings, checkpoints.

Every CLI turns a `MixnetError` into one line, `error: <file>: <problem>`, and exit status 2
(`mixnet.cli.run`); anything else is a bug and keeps its traceback. Subclasses say which part of
mixnet found the problem (`AudioError`, `PairingError`, `CheckpointError`, ...). It derives from
`ValueError` so that code catching `ValueError` around mixnet calls keeps working.
"""


class MixnetError(ValueError):
  """A problem with the user's input; the message names the file (or setting) and the problem."""
