"""Chunked processing: a file of any length through a model compiled for one chunk shape.

A signal is cut into chunks of one fixed shape `[batch_size, chunk, channels]`, so the jitted
model compiles once. Consecutive chunks overlap by more than the model's receptive field: each
chunk carries `context` samples of input on each side that are computed but discarded, and the
kept parts of neighbours overlap by a short crossfade. Chunk starts sit on the model's
alignment grid (its total stride / STFT hop), so every kept sample sees exactly the input it
would in one pass over the whole file: chunked output equals unchunked output to float
precision, with no seams.
"""

import dataclasses

import numpy as np

from mixnet import models

_FADE = 1024  # crossfade between the kept parts of neighbouring chunks, samples


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
  """Geometry of chunked processing, all in samples at the model's rate."""
  chunk: int  # input samples per chunk (the compiled shape)
  context: int  # discarded input on each side of a chunk's kept part
  fade: int  # crossfade between kept parts of neighbouring chunks
  hop: int  # distance between chunk starts

  @classmethod
  def create(cls, model_config, chunk_seconds, sample_rate):
    """A plan whose chunks each contribute about `chunk_seconds` of new audio (the hop)."""
    align = models.alignment(model_config)
    left, right = models.context(model_config)
    context = _round_up(max(left, right), align)
    fade = _round_up(_FADE, align)
    # hop >= fade: only two neighbouring chunks ever overlap, so the ramps sum to one.
    hop = max(_round_up(chunk_seconds * sample_rate, align), fade)
    return cls(chunk=hop + 2 * context + fade, context=context, fade=fade, hop=hop)


def _round_up(n, multiple):
  return -(-int(n) // multiple) * multiple


def chunk_weights(plan, num_chunks):
  """Overlap-add weights of each chunk's output, `[num_chunks, chunk]`, summing to 1 over time.

  Chunk k's input starts at `k * hop - context`; its kept part starts `context` later. Inside
  the kept part it fades in over the first `fade` samples (except the first chunk) and out over
  the last `fade` (except the last), with raised-cosine ramps that sum to one.
  """
  ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(plan.fade) + 0.5) / plan.fade)
  w = np.zeros((num_chunks, plan.chunk), np.float32)
  kept = slice(plan.context, plan.chunk - plan.context)
  w[:, kept] = 1.0
  for k in range(num_chunks):
    if k > 0:
      w[k, plan.context:plan.context + plan.fade] = ramp
    if k < num_chunks - 1:
      w[k, plan.chunk - plan.context - plan.fade:plan.chunk - plan.context] = ramp[::-1]
  return w


def process_chunked(apply_fn, audio_tc, plan, batch_size):
  """Runs `apply_fn` (`[batch, chunk, channels] -> same`) over `audio_tc` chunk by chunk.

  Args:
    apply_fn: jitted model function of `[batch, plan.chunk, channels]`; batch is `batch_size`
      except for files shorter than `batch_size` chunks.
    audio_tc: float32 `[time, channels]` at the model's rate.
    plan: a ChunkPlan.
    batch_size: chunks per call.

  Returns:
    float32 `[time, channels]`, equal (to float precision) to one pass over the whole signal
    zero-padded by `plan.context` at both ends.
  """
  length, channels = audio_tc.shape
  num_chunks = max(1, -(-length // plan.hop))
  total = (num_chunks - 1) * plan.hop + plan.chunk
  padded = np.zeros((total, channels), np.float32)
  padded[plan.context:plan.context + length] = audio_tc
  starts = np.arange(num_chunks) * plan.hop
  weights = chunk_weights(plan, num_chunks)
  out = np.zeros((total, channels), np.float32)
  # Fewer chunks than a batch: a smaller batch (one more compile per size, at most
  # `batch_size` shapes) instead of padding a short file with whole chunks of silence.
  batch_size = min(batch_size, num_chunks)
  for b in range(0, num_chunks, batch_size):
    idx = starts[b:b + batch_size]
    batch = np.zeros((batch_size, plan.chunk, channels), np.float32)
    for j, s in enumerate(idx):
      batch[j] = padded[s:s + plan.chunk]
    pred = np.asarray(apply_fn(batch))
    for j, s in enumerate(idx):
      out[s:s + plan.chunk] += pred[j] * weights[b + j][:, None]
  return out[plan.context:plan.context + length]
