"""mixnet: learn one person's vocal-mixing style from raw/mixed pairs (JAX/Flax).

Modules are imported where used (`from mixnet import infer`), so importing the package is cheap.
"""

__version__ = "0.1.0"
