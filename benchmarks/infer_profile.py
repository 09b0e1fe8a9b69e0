"""Where `process_file`'s time goes, and what each stage of the chain model costs.

Used by `benchmarks/infer.py` (its docstring says how to run it); each part is timed alone on
the arrays `process_file` hands it, best of a few calls.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from mixnet import audio, chunking, dsp, engines, infer, models, silence
from mixnet.diffdsp import dynamics, filters, gain, reverberation, saturation
from mixnet.models import chain


def best_seconds(fn, repeats):
  """Best wall time of `repeats` calls of `fn` (seconds)."""
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - start)
  return best


def _glue(backend, x_tc):
  """`engines.run_stages` with every model call replaced by returning its input: the numpy
  work of chunking (padding, copying chunks, weights, overlap-add) alone."""
  stages = [engines.Stage(np.asarray, stage.plan, stage.batch_size) for stage in backend.stages]
  return engines.run_stages(stages, x_tc)


def model_parts(backend, x_tc, sr, out_path):
  """[(part, callable)] of a model engine's `process_file` on float32 `[time, 1]` at `sr`."""
  y_tc = engines.run_stages(backend.stages, x_tc)
  parts = [("read", lambda: audio.load(out_path))]
  if backend.input_lufs is not None:
    parts.append(("staging loudness",
                  lambda: gain.staging_gain_db(x_tc, sr, backend.input_lufs)))
  limited_tc = dsp.true_peak_limit(y_tc, sr)
  return parts + [
      ("chunk glue (no model)", lambda: _glue(backend, x_tc)),
      ("dc block", lambda: silence.dc_block(y_tc, sr)),
      ("finite check", lambda: np.all(np.isfinite(y_tc))),
      ("silence gate", lambda: silence.gate(y_tc, x_tc, sr, backend.sample_rate,
                                            backend.context, joint=False)),
      ("loudness normalisation", lambda: dsp.normalize_loudness(y_tc, sr, -16.0)),
      ("true-peak limiter", lambda: dsp.true_peak_limit(y_tc, sr, ceiling_db=-1.0)),
      ("summary loudness", lambda: dsp.integrated_loudness(limited_tc, sr)),
      ("write", lambda: audio.save(out_path, limited_tc, sr)),
      ("write + loudness (as run)", lambda: infer.save_and_measure(out_path, limited_tc, sr,
                                                                  True)),
  ]


def print_parts(engines_by_name, in_path, out_path, repeats):
  """The profile table: seconds of each part of `process_file`, per engine."""
  x_tc, sr = audio.load(in_path)
  audio.save(out_path, x_tc, sr)
  for name, processor in engines_by_name:
    backend = processor.backend
    if processor.engine == "model":
      parts = model_parts(backend, x_tc, sr, out_path)
    else:
      parts = [("read", lambda: audio.load(out_path)),
               ("dsp chain", lambda p=processor: dsp.process(x_tc, sr, p.preset)),
               ("summary loudness", lambda: dsp.integrated_loudness(x_tc, sr)),
               ("write", lambda: audio.save(out_path, x_tc, sr)),
               ("write + loudness (as run)", lambda: infer.save_and_measure(out_path, x_tc, sr,
                                                                           True))]
    print(f"{name}: parts of process_file (s)")
    for part, fn in parts:
      print(f"  {part:<26}{best_seconds(fn, repeats):>8.3f}", flush=True)


def chain_stages(config, repeats):
  """Seconds of each stage of the chain of `config` on the engine's full chunk shape."""
  module = models.build(config.model)
  sr = config.sample_rate
  hop_s, batch = chunking.chunk_sizes(models.context(config.model), sr,
                                      config.infer.chunk_seconds, config.infer.batch_size)
  plan = chunking.ChunkPlan.create(config.model, hop_s, sr)
  rng = np.random.default_rng(0)
  x = jnp.asarray(0.1 * rng.standard_normal((batch, plan.chunk, 1)).astype(np.float32))
  params = module.init(jax.random.key(0), x[:, :4096])["params"]
  s = chain.physical(module, params)
  ir = chain.impulse_response(module, s["reverb"])
  taps = chain.eq_fir_taps(module)
  stages = [
      ("eq (FIR by FFT)", lambda x: filters.equalize(x, s["eq"], sr, taps)),
      ("compressor (scan)", lambda x: dynamics.compress(x, sr, s["compressor"], "scan")),
      ("compressor (assoc)", lambda x: dynamics.compress(x, sr, s["compressor"], "assoc")),
      ("saturation", lambda x: saturation.saturate(x, s["saturation"]["drive_db"],
                                                   s["saturation"]["mix"])),
      ("impulse response", lambda x: chain.impulse_response(module, s["reverb"])),
      ("reverb (FFT convolution)", lambda x: reverberation.reverb(x, ir, s["reverb"]["send_db"])),
      ("whole chain", functools.partial(module.apply, {"params": params})),
  ]
  seconds = plan.chunk * batch / sr
  print(f"chain stages on [{batch}, {plan.chunk}, 1] ({seconds:.1f} s of input); EQ FIR "
        f"{taps} taps, reverb response {ir.shape[0]} taps")
  print(f"{'stage':<28}{'ms':>9}{'x real time':>12}")
  for name, fn in stages:
    jitted = jax.jit(fn)
    jax.block_until_ready(jitted(x))
    t = best_seconds(lambda f=jitted: f(x), repeats)
    print(f"{name:<28}{1e3 * t:>9.1f}{seconds / t:>12.0f}", flush=True)
