"""What the training loop reports: a window of step metrics, and the console.

`MetricsWindow` averages the steps between two log lines for TensorBoard and the log, and stops
the run on a non-finite step. `Console` is what a person at the terminal sees: one progress line
that updates in place (step, steps/s, ETA, loss) and the few messages worth reading (resume,
eval results); everything else goes to the absl log.
"""

import time

import jax
import numpy as np
from absl import logging

from mixnet import errors, parallel


class NonFiniteLossError(errors.MixnetError, FloatingPointError):
  """Training produced a NaN/inf loss or gradient; the message names the step."""


class MetricsWindow:
  """Training metrics since the last log line, and the input wait and throughput behind them.

  A step's metrics are read from the device one step late (`add` drains the previous step),
  so the host dispatches the next step before waiting for this one. Reading a non-finite step
  raises `NonFiniteLossError`, naming the last checkpoint saved (`last_saved`), which is intact.
  """

  def __init__(self, last_saved):
    self.last_saved = last_saved
    self._pending = None
    self._reset()

  def _reset(self):
    self._rows, self._steps, self._wait_s, self._start = [], 0, 0.0, time.time()

  def add(self, step, step_metrics, wait_s):
    """Records a dispatched step: its device-side metrics and the seconds spent on its input."""
    self.drain()
    self._pending = (step, step_metrics)
    self._steps += 1
    self._wait_s += wait_s

  def drain(self):
    """Reads the pending step's metrics (blocks on it); raises on a non-finite one."""
    if self._pending is None:
      return
    (step, m), self._pending = self._pending, None
    m = jax.device_get(m)
    if not m["finite"]:
      raise NonFiniteLossError(
          f"non-finite loss at step {step} (loss={m['loss']}, grad_norm={m['grad_norm']}); "
          f"training stopped without applying it. The last good checkpoint (step "
          f"{self.last_saved}) is intact. Check the data for NaN/inf samples or lower "
          "config.opt.learning_rate.")
    self._rows.append(m)

  def summary(self, audio_seconds_per_step):
    """Window averages (`train/...`) and throughput (`perf/...`); starts a new window."""
    self.drain()
    elapsed = max(time.time() - self._start, 1e-9)
    out = {f"train/{k}": float(np.mean([r[k] for r in self._rows]))
           for k in self._rows[0] if k != "finite"}
    out["perf/steps_per_sec"] = self._steps / elapsed
    out["perf/audio_seconds_per_sec"] = self._steps * audio_seconds_per_step / elapsed
    out["perf/input_wait_fraction"] = self._wait_s / elapsed
    self._reset()
    return out


class Console:
  """What a person at the terminal sees: one updating progress line and a few messages.

  Every message also goes to the absl log. Without `show` (library use: tests, notebooks)
  only the log gets them.
  """

  def __init__(self, show, num_steps, start_step):
    import tqdm  # Only the console needs it.

    self.show = show and parallel.is_primary()
    self.bar = tqdm.tqdm(total=num_steps, initial=start_step, unit="step", dynamic_ncols=True,
                         disable=not self.show, smoothing=0.1)

  def say(self, message):
    logging.info("%s", message)
    if self.show:
      self.bar.write(message)

  def progress(self, loss=None):
    self.bar.update(1)
    if loss is not None:
      self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

  def close(self):
    self.bar.close()
