"""numpy/scipy vocal chain: the fallback when no trained model exists, and the engine that makes
the "mixed" side of the synthetic demo pairs.

All audio is float32 `[time, channels]` (mono or stereo) at a sample rate in Hz.
"""

from mixnet.dsp.chain import process
from mixnet.dsp.dynamics import compress, compressor_gain, de_esser, static_curve_db
from mixnet.dsp.echo import delay
from mixnet.dsp.filters import (
    EqBand,
    equalize,
    high_shelf,
    highpass,
    low_shelf,
    lowpass,
    peaking_eq,
)
from mixnet.dsp.limiter import true_peak_db, true_peak_limit
from mixnet.dsp.loudness import LOUDNESS_FLOOR_LUFS, integrated_loudness, normalize_loudness
from mixnet.dsp.presets import (
    PRESETS,
    CompressorParams,
    ConvolutionReverbParams,
    DeEsserParams,
    DelayParams,
    Preset,
    PresetError,
    ReverbParams,
    SaturationParams,
    get_preset,
    load_preset,
    save_preset,
)
from mixnet.dsp.reverberation import convolution_reverb, reverb
from mixnet.dsp.saturation import saturate

__all__ = [
    "LOUDNESS_FLOOR_LUFS",
    "PRESETS",
    "CompressorParams",
    "ConvolutionReverbParams",
    "DeEsserParams",
    "DelayParams",
    "EqBand",
    "Preset",
    "PresetError",
    "ReverbParams",
    "SaturationParams",
    "compress",
    "compressor_gain",
    "convolution_reverb",
    "de_esser",
    "delay",
    "equalize",
    "get_preset",
    "high_shelf",
    "highpass",
    "integrated_loudness",
    "load_preset",
    "low_shelf",
    "lowpass",
    "normalize_loudness",
    "peaking_eq",
    "process",
    "reverb",
    "saturate",
    "save_preset",
    "static_curve_db",
    "true_peak_db",
    "true_peak_limit",
]
