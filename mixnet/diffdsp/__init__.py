"""Differentiable vocal chain in jnp: the stages of `mixnet.dsp`, one module per concept.

`filters` (parametric EQ by frequency sampling of RBJ biquads), `dynamics` (feed-forward
compressor), `saturation` (parallel tanh), `reverberation` (filtered-noise impulse response with
per-band decay), `gain` (input gain staging, output level); `core` has the smooth maps that keep
learned parameters in their physical ranges. Audio is float32 `[batch, time, channels]`; every
function is pure and jit-able. `mixnet.models.chain` assembles them into a learnable model.
"""
