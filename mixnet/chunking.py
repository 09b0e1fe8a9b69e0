"""Chunked processing: a file of any length through a model compiled for a few chunk shapes.

A signal is cut into consecutive chunks, each `left + hop + fade + right` samples long: `left`
and `right` samples of input on either side (the model's context on that side: a causal
reverb needs seconds before a sample and almost nothing after it) are computed but discarded,
and the kept parts of neighbours overlap by a short crossfade. A plan compiles a few hop
lengths: full chunks of the longest hop cover the file, and the rest goes into the shortest
hop that holds it, so a file's last chunk carries little padding. Chunk starts sit on the
model's alignment grid (its total stride / STFT hop / control period), so every kept sample
sees exactly the input it would in one pass over the whole file: chunked output equals
unchunked output to float precision, with no seams.
"""

import dataclasses

import numpy as np

from mixnet import models

_FADE = 1024  # crossfade between the kept parts of neighbouring chunks, samples
TAILS = 4  # hop lengths a plan compiles: the full hop and fractions 3/4, 1/2, 1/4 of it
# Most context (left + right) per new sample of a full chunk. 1/16 gave base time_unet (1.5 s
# of context) 24.4 s hops; 1/32 gives 30.5 s, and `process_file` on 3 minutes took 3.65 s
# instead of 3.85 s (`benchmarks/infer.py --configs base.py --chunk_seconds 24.4,30.5`).
CONTEXT_SHARE = 1 / 32


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
  """Geometry of chunked processing, all in samples at the model's rate.

  Attributes:
    left, right: discarded input before / after a chunk's kept part (the model's context on
      that side, rounded up to the alignment grid).
    fade: crossfade between kept parts of neighbouring chunks.
    hops: new audio per chunk of each compiled chunk length, longest first; multiples of the
      alignment, each at least `fade` (so only two neighbouring chunks ever overlap).
  """
  left: int
  right: int
  fade: int
  hops: tuple

  @classmethod
  def create(cls, model_config, chunk_seconds, sample_rate):
    """A plan whose full chunks each contribute about `chunk_seconds` of new audio (the hop)."""
    align = models.alignment(model_config)
    left, right = models.context(model_config)
    fade = _round_up(_FADE, align)
    hop = max(_round_up(chunk_seconds * sample_rate, align), fade)
    hops = sorted({max(_round_up(hop * k / TAILS, align), fade) for k in range(1, TAILS + 1)},
                  reverse=True)
    return cls(left=_round_up(left, align), right=_round_up(right, align), fade=fade,
               hops=tuple(hops))

  @property
  def chunk(self):
    """Input samples of a full chunk (the longest compiled shape)."""
    return self.length(self.hops[0])

  def length(self, hop):
    """Input samples of a chunk that contributes `hop` new samples."""
    return self.left + hop + self.fade + self.right

  def cover(self, length):
    """Hops of the consecutive chunks that cover `length` samples: full ones, then one tail.

    The tail is the shortest compiled hop that holds what the full chunks leave.
    """
    full, rest = divmod(max(int(length), 1), self.hops[0])
    tail = [min(h for h in self.hops if h >= rest)] if rest else []
    return [self.hops[0]] * full + tail


def chunk_sizes(context, sample_rate, chunk_seconds, batch_size):
  """(new audio per full chunk in seconds, most chunks per call) for a model with `context`.

  One call's audio, `chunk_seconds x batch_size` seconds, is the budget: it bounds a call's
  memory and FFT sizes (long FFTs leave the cache and cost more per sample). Within it, a
  model whose context (`(left, right)` samples) is long gets chunks of up to `1 /
  CONTEXT_SHARE` times its context, so the recomputed context stays a small share of the
  work, and fewer of them per call (never fewer than one); `chunk_seconds` is the floor.
  """
  context_s = sum(context) / sample_rate
  budget = chunk_seconds * batch_size
  hop_seconds = max(chunk_seconds, min(context_s / CONTEXT_SHARE, budget - context_s))
  return hop_seconds, max(1, min(batch_size, int(budget / hop_seconds)))


def _round_up(n, multiple):
  return -(-int(n) // multiple) * multiple


def chunk_weight(plan, hop, first, last):
  """Overlap-add weight `[length(hop)]` of one chunk's output; neighbours' weights sum to 1.

  The kept part (after `left` samples) fades in over its first `fade` samples (except in the
  first chunk) and out over the `fade` samples after its `hop` (except in the last), with
  raised-cosine ramps that sum to one; the context is weighted 0.
  """
  ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(plan.fade) + 0.5) / plan.fade)
  w = np.zeros(plan.length(hop), np.float32)
  start, fade_out = plan.left, plan.left + hop
  w[start:fade_out + plan.fade] = 1.0
  if not first:
    w[start:start + plan.fade] = ramp
  if not last:
    w[fade_out:fade_out + plan.fade] = ramp[::-1]
  return w


def batches(hops, batch_size):
  """(first chunk index, count) of runs of up to `batch_size` consecutive equal hops."""
  runs, k = [], 0
  while k < len(hops):
    count = 1
    while count < batch_size and k + count < len(hops) and hops[k + count] == hops[k]:
      count += 1
    runs.append((k, count))
    k += count
  return runs


def process_chunked(apply_fn, audio_tc, plan, batch_size):
  """Runs `apply_fn` (`[batch, chunk, channels] -> same`) over `audio_tc` chunk by chunk.

  Args:
    apply_fn: jitted model function; it is called with `[count, plan.length(hop), channels]`
      for `hop` in `plan.hops` and count from 1 to `batch_size` (only full chunks batch).
    audio_tc: float32 `[time, channels]` at the model's rate.
    plan: a ChunkPlan.
    batch_size: most chunks per call.

  Returns:
    float32 `[time, channels]`, equal (to float precision) to one pass over the whole signal
    zero-padded by `plan.left` before it and at least `plan.right` after it.
  """
  length, channels = audio_tc.shape
  hops = plan.cover(length)
  starts = np.concatenate([[0], np.cumsum(hops)[:-1]]).astype(int)
  total = int(starts[-1]) + plan.length(hops[-1])
  padded = np.zeros((total, channels), np.float32)
  padded[plan.left:plan.left + length] = audio_tc
  out = np.zeros((total, channels), np.float32)
  for k, count in batches(hops, batch_size):
    size = plan.length(hops[k])
    batch = np.stack([padded[s:s + size] for s in starts[k:k + count]])
    pred = np.asarray(apply_fn(batch))
    for j in range(count):
      s = starts[k + j]
      weight = chunk_weight(plan, hops[k], k + j == 0, k + j == len(hops) - 1)
      out[s:s + size] += pred[j] * weight[:, None]
  return out[plan.left:plan.left + length]
