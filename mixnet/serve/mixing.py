"""The work of one mixing request: decode the upload, mix it with the engine, encode the result.

Everything here runs on a worker thread, never on the event loop (decoding, mixing and encoding
are CPU work). Uploads are bytes in memory; `decode` copies them into a temporary file (named
by the server, deleted as soon as decoding ends) only because `mixnet.audio.load`, whose checks
every upload must pass, reads from a path. Nothing a client sends becomes a server path: its file
name is only cleaned and echoed in messages and in the download name.

Audio arrays are float32 `[time, channels]` (`x_tc`) at the upload's own sample rate, in Hz.
"""

import dataclasses
import io
import re
import tempfile
import time

import numpy as np
import soundfile as sf

from mixnet import audio, dsp, errors, infer

# Output container, sample format and media type per `format` option.
FORMATS = {"wav": ("WAV", "PCM_24", "audio/wav"), "flac": ("FLAC", "PCM_24", "audio/flac")}
LOUDNESS_RANGE_LUFS = (-40.0, -6.0)
OPTIONS = ("preset", "format", "loudness_lufs", "strength")


class RequestError(errors.MixnetError):
  """A request the service refuses: HTTP `status`, a short `code` and a `detail` for people."""

  def __init__(self, status, code, detail, headers=None):
    super().__init__(detail)
    self.status, self.code, self.detail = status, code, detail
    self.headers = headers or {}


def load_processor(model_path):
  """The engine: the model at `model_path` (loading must succeed), or the DSP chain for None."""
  return infer.AudioProcessor(use_ml_model=model_path is not None, model_path=model_path,
                              strict=True)


def warm_up(processor):
  """Compiles every shape a request can need (`AudioProcessor.compile`), so that no request
  waits for a compile; seconds."""
  return processor.compile()


def clean_name(name):
  """A client's file name reduced to a safe one to show: no folders, only [A-Za-z0-9._-]."""
  base = re.split(r"[\\/]", name or "")[-1]
  return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:100] or "upload"


@dataclasses.dataclass(frozen=True)
class MixOptions:
  """What a client may choose: DSP preset, output format, output loudness (LUFS, or None), and
  the style's strength (0: the raw take at the output loudness, 1: the full style)."""
  preset: str | None = None
  format: str = "wav"
  loudness_lufs: float | None = None
  strength: float = 1.0

  @classmethod
  def parse(cls, fields, presets):
    """Options from string `fields` (query or form); `presets` are those the engine offers.

    Raises:
      RequestError: 422 for an unknown option or a value out of range; the detail says which.
    """
    unknown = sorted(set(fields) - set(OPTIONS))
    if unknown:
      raise RequestError(422, "invalid_option", f"unknown option(s) {', '.join(unknown)}; "
                         f"options: {', '.join(OPTIONS)}")
    preset = fields.get("preset") or None
    if preset is not None and preset not in presets:
      offered = ", ".join(presets) if presets else "none: this service mixes with a model"
      raise RequestError(422, "invalid_option", f"preset {preset!r} is not offered; presets: "
                         f"{offered}")
    fmt = fields.get("format") or "wav"
    if fmt not in FORMATS:
      raise RequestError(422, "invalid_option", f"format {fmt!r}; formats: {', '.join(FORMATS)}")
    return cls(preset, fmt, _loudness(fields.get("loudness_lufs")),
               _strength(fields.get("strength")))


def _loudness(text):
  if not text:
    return None
  lo, hi = LOUDNESS_RANGE_LUFS
  try:
    value = float(text)
  except ValueError:
    value = float("nan")
  if not lo <= value <= hi:
    raise RequestError(422, "invalid_option",
                       f"loudness_lufs {text!r}: expected a number from {lo:g} to {hi:g}")
  return value


def _strength(text):
  if not text:
    return 1.0
  try:
    value = float(text)
  except ValueError:
    value = float("nan")
  if not 0.0 <= value <= 1.0:
    raise RequestError(422, "invalid_option", f"strength {text!r}: expected a number from 0 to 1")
  return value


def decode(data, name, max_duration_s):
  """Uploaded bytes -> (x_tc, sample_rate) with every check `mixnet.audio.load` makes.

  Raises:
    RequestError: 415 when the bytes are no audio format libsndfile reads, 413 when the audio is
      longer than `max_duration_s`, 422 when it is audio but unusable (truncated, empty, more
      than two channels, NaN samples). The detail names the upload, never the temporary file.
  """
  if not data:
    raise RequestError(422, "unusable_audio", f"{name}: the upload is empty")
  with tempfile.NamedTemporaryFile(prefix="mixnet-upload-") as tmp:
    tmp.write(data)
    tmp.flush()
    try:
      info = sf.info(tmp.name)
    except (sf.LibsndfileError, RuntimeError) as e:
      raise RequestError(415, "unsupported_media", f"{name}: not a readable audio file "
                         f"({str(e).replace(tmp.name, name)})") from e
    if info.samplerate > 0 and info.frames / info.samplerate > max_duration_s:
      raise RequestError(413, "too_long", f"{name}: {info.frames / info.samplerate:.1f} s of "
                         f"audio; this service mixes at most {max_duration_s:g} s")
    try:
      return audio.load(tmp.name)
    except audio.AudioError as e:
      raise RequestError(422, "unusable_audio", str(e).replace(tmp.name, name)) from e


def encode(y_tc, sample_rate, fmt):
  """`[time, channels]` float32 -> file bytes in `fmt` (24-bit WAV or FLAC)."""
  container, subtype, _ = FORMATS[fmt]
  buffer = io.BytesIO()
  sf.write(buffer, y_tc, int(sample_rate), format=container, subtype=subtype)
  return buffer.getvalue()


@dataclasses.dataclass(frozen=True)
class MixResult:
  """A mixed file ready to send: bytes, media type and the response headers."""
  body: bytes
  media_type: str
  headers: dict


class Mixer:
  """One engine shared by every request (thread-safe: no state changes after construction).

  Args:
    processor: an `infer.AudioProcessor`, loaded and compiled once.
    max_duration_s: longest upload accepted, seconds.
  """

  def __init__(self, processor, max_duration_s):
    self.processor = processor
    self.max_duration_s = max_duration_s
    self.presets = sorted(dsp.PRESETS) if processor.engine == "dsp" else []

  def mix(self, data, filename, options):
    """Mixes uploaded bytes; returns a MixResult of the input's length, rate and channels."""
    name = clean_name(filename)
    x_tc, sample_rate = decode(data, name, self.max_duration_s)
    t0 = time.perf_counter()
    preset_config = {"strength": options.strength}
    if options.preset is not None:
      preset_config.update(dataclasses.asdict(dsp.get_preset(options.preset)))
    y_tc = self.processor.process_vocal(x_tc, preset_config, sample_rate=sample_rate)
    if options.loudness_lufs is not None:
      y_tc = dsp.true_peak_limit(dsp.normalize_loudness(y_tc, sample_rate, options.loudness_lufs),
                                 sample_rate, ceiling_db=self.processor.ceiling_db)
    seconds = time.perf_counter() - t0
    body = encode(y_tc, sample_rate, options.format)
    headers = {
        "X-Mixnet-Engine": self.processor.engine,
        "X-Mixnet-Duration-S": f"{x_tc.shape[0] / sample_rate:.3f}",
        "X-Mixnet-Processing-S": f"{seconds:.3f}",
        "X-Mixnet-Sample-Rate": str(sample_rate),
        "X-Mixnet-Channels": str(x_tc.shape[1]),
        "X-Mixnet-Input-LUFS": f"{dsp.integrated_loudness(x_tc, sample_rate):.2f}",
        "X-Mixnet-Output-LUFS": f"{dsp.integrated_loudness(y_tc, sample_rate):.2f}",
        "Content-Disposition":
            f'attachment; filename="{name.rsplit(".", 1)[0]}_mixed.{options.format}"',
    }
    if self.processor.engine == "dsp":
      headers["X-Mixnet-Preset"] = options.preset or self.processor.preset_name
    return MixResult(body, FORMATS[options.format][2], headers)

  def info(self):
    """What `/v1/info` reports about the engine (no server paths)."""
    p = self.processor
    model = None
    if p.engine == "model":
      meta = p.meta
      model = {
          "version": "/".join(p.model_path.rstrip("/").split("/")[-3:]),
          "name": meta.get("model"), "step": meta.get("step"), "val_loss": meta.get("val_loss"),
          "sample_rate": p.sample_rate, "channels": p.channels,
          "output_lufs": p.target_lufs,
          "style": p.style,
          "training_data": {k: v for k, v in meta.get("data", {}).items()
                            if isinstance(v, (int, float)) and np.isfinite(v)},
      }
    return {"engine": p.engine, "model": model, "fallback_reason": p.fallback_reason,
            "presets": self.presets, "default_preset": p.preset_name if self.presets else None,
            "formats": list(FORMATS), "options": list(OPTIONS),
            "loudness_range_lufs": list(LOUDNESS_RANGE_LUFS)}
