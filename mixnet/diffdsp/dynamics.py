"""Feed-forward compressor in jnp: the design of `mixnet.dsp.dynamics`, differentiable.

Same steps as the numpy twin, so a learned setting exports exactly: the peak of |x| over all
channels in control frames of `mixnet.dsp.dynamics.control_period` samples (0.5 ms), the soft-knee
static curve in dB, an attack/release one-pole on the gain reduction (dB) at the control rate with
the exact pole for one frame, and linear interpolation of the linear gain back to audio rate.

The one-pole's coefficient switches on the sign of `target - state`, so it is not a linear
filter. Two ways to run it, equal in value:
  "scan":  `lax.scan` over frames; autodiff runs the recursion backwards through the saved
           states, so gradients reach threshold, ratio, knee (through the target), attack and
           release (through the poles) and makeup.
  "assoc": the attack/release choice of every frame is taken from a gradient-free scan; given
           that mask the recursion `s_f = a_f s_(f-1) + (1 - a_f) t_f` is linear and runs as a
           `lax.associative_scan` (log depth, the form that suits GPU/TPU). The mask is piecewise
           constant in the parameters, so the gradient is the same as "scan"'s almost everywhere.

Memory: a difference in the state decays at least by the slower pole per frame (the map from one
frame's state to the next is piecewise linear with slopes attack_pole and release_pole), so after
`MEMORY_TIME_CONSTANTS` release time constants a difference of up to 160 dB of gain reduction has
shrunk below 1e-3 dB (a relative gain error below 1e-4). `memory_samples` is that bound.
"""

import jax
import jax.numpy as jnp
import numpy as np

from mixnet.diffdsp import core
from mixnet.dsp import core as np_core
from mixnet.dsp import dynamics as np_dynamics

MEMORY_TIME_CONSTANTS = 12.0
METHODS = ("scan", "assoc")


def static_curve_db(level_db, threshold_db, ratio, knee_db):
  """Output level (dB) of the soft-knee static curve (Giannoulis et al. 2012, eq. 4); knee > 0."""
  over = level_db - threshold_db
  above = threshold_db + over / ratio
  in_knee = level_db + (1.0 / ratio - 1.0) * (over + knee_db / 2.0) ** 2 / (2.0 * knee_db)
  return jnp.where(2 * over < -knee_db, level_db, jnp.where(2 * over > knee_db, above, in_knee))


def frame_peak_db(x_btc, period):
  """Peak level (dBFS) over all channels of each control frame, `[batch, frames]`."""
  batch, length, channels = x_btc.shape
  frames = -(-length // period)
  padded = jnp.pad(jnp.abs(x_btc), ((0, 0), (0, frames * period - length), (0, 0)))
  peaks = jnp.max(padded.reshape(batch, frames, period * channels), axis=2)
  return core.gain_to_db(peaks, 10.0 ** (np_core.SILENCE_DB / 20.0))


def _scan(target_bf, attack_pole, release_pole):
  def step(state_b, target_b):
    pole = jnp.where(target_b > state_b, attack_pole, release_pole)
    state_b = target_b + (state_b - target_b) * pole
    return state_b, state_b

  _, states_fb = jax.lax.scan(step, jnp.zeros_like(target_bf[:, 0]), target_bf.T)
  return states_fb.T


def _assoc(target_bf, attack_pole, release_pole):
  free = jax.lax.stop_gradient(_scan(target_bf, attack_pole, release_pole))
  previous = jnp.concatenate([jnp.zeros_like(free[:, :1]), free[:, :-1]], axis=1)
  pole_bf = jnp.where(jax.lax.stop_gradient(target_bf) > previous, attack_pole, release_pole)

  def combine(left, right):
    return left[0] * right[0], right[0] * left[1] + right[1]

  _, states = jax.lax.associative_scan(combine, (pole_bf, (1.0 - pole_bf) * target_bf), axis=1)
  return states


def smooth_reduction(target_bf, attack_pole, release_pole, method="scan"):
  """Attack/release one-pole over gain reduction `[batch, frames]` (dB >= 0); state starts at 0."""
  if method not in METHODS:
    raise ValueError(f"compressor method must be one of {METHODS}, got {method!r}")
  return (_scan if method == "scan" else _assoc)(target_bf, attack_pole, release_pole)


def frame_pole(time_ms, sample_rate, period):
  """One-pole coefficient for time constant `time_ms` when the filter steps every `period`."""
  return jnp.exp(-period / (time_ms * 1e-3 * sample_rate))


def frames_to_samples(values_bf, period, length):
  """Linear interpolation of per-frame values (each valid at its frame's last sample), `[b, t]`."""
  previous = jnp.concatenate([values_bf[:, :1], values_bf[:, :-1]], axis=1)
  fraction_p = (jnp.arange(period, dtype=jnp.float32) + 1) / period
  samples = previous[..., None] + (values_bf - previous)[..., None] * fraction_p
  return samples.reshape(values_bf.shape[0], -1)[:, :length]


def compress(x_btc, sample_rate, comp, method="scan"):
  """Feed-forward peak compressor with linked channels, float32 `[batch, time, channels]`.

  Args:
    x_btc: float32 `[batch, time, channels]`.
    sample_rate: Hz.
    comp: physical parameters: `threshold_db` (dBFS peak), `ratio` (>= 1), `knee_db` (> 0),
      `attack_ms`, `release_ms` (63% of a rise / fall of the gain reduction), `makeup_db`.
    method: "scan" or "assoc" (see the module docstring).
  """
  period = np_dynamics.control_period(sample_rate)
  level_db = frame_peak_db(x_btc, period)
  curve = static_curve_db(level_db, comp["threshold_db"], comp["ratio"], comp["knee_db"])
  reduction = smooth_reduction(level_db - curve,
                               frame_pole(comp["attack_ms"], sample_rate, period),
                               frame_pole(comp["release_ms"], sample_rate, period), method)
  gain_bt = frames_to_samples(core.db_to_gain(comp["makeup_db"] - reduction), period,
                              x_btc.shape[1])
  return x_btc * gain_bt[..., None]


def memory_samples(max_release_ms, sample_rate):
  """Samples after which the compressor has forgotten its past (see the module docstring)."""
  return int(np.ceil(MEMORY_TIME_CONSTANTS * max_release_ms * 1e-3 * sample_rate))
