"""mixnet: learn one person's vocal-mixing style from raw/mixed pairs (JAX/Flax).

Modules are imported where used (`from mixnet import infer`), so importing the package is cheap.
`from mixnet import AudioProcessor` imports `mixnet.infer` (and JAX) only when asked for.
"""

__version__ = "0.1.0"


def __getattr__(name):
  if name == "AudioProcessor":
    from mixnet.infer import AudioProcessor
    return AudioProcessor
  raise AttributeError(f"module 'mixnet' has no attribute {name!r}")
