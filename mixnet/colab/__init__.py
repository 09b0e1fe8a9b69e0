"""Helpers for the notebooks in colab/: `from mixnet import colab`, then `colab.<name>`.

The install cell imports this package from the fresh clone before the right jax is installed, so
nothing heavy (jax, orbax, TensorFlow) is imported at module level: functions that need them
import them when called.
"""

from mixnet.colab.files import MODEL_ZIP, archive_model, save_uploads, unpack_model, zip_folder
from mixnet.colab.overrides import apply_overrides
from mixnet.colab.runtime import (
    JAX_EXTRAS,
    JAX_VERSION,
    detect_accelerator,
    in_colab,
    install_command,
    run,
    runtime_report,
    show_mixnet_logs,
    stale_modules,
)

__all__ = [
    "JAX_EXTRAS", "JAX_VERSION", "MODEL_ZIP", "apply_overrides", "archive_model",
    "detect_accelerator", "in_colab", "install_command", "run", "runtime_report", "save_uploads",
    "show_mixnet_logs", "stale_modules", "unpack_model", "zip_folder",
]
