"""The HTTP API and the page: routes, limits and JSON errors (Starlette, ASGI).

  GET  /           the web page (static/, works offline)
  GET  /v1/health  {"status": "ok", ...}: the engine is loaded and the service takes requests
  GET  /v1/info    engine, model (version, rate, channels, training facts), presets, limits
  POST /v1/mix     one audio file, as a multipart `file` field or as the raw body; options as
                   query parameters or form fields: preset, format (wav|flac), loudness_lufs.
                   Returns the mixed file (input's length, rate and channels) and X-Mixnet-*
                   headers (engine, duration, processing time, loudness).

Every error is JSON `{"error": code, "detail": message}` with its status: 400 (malformed
multipart, more than one file), 413 (upload too big or too long), 415 (not audio, or a body type
the API does not take), 422 (unusable audio, bad option), 503 with Retry-After (too many requests
waiting), 504 (a mix ran past the time limit), 500 (a bug; the server logs its traceback).

Concurrency: the engine is built and compiled once, in `create_app`. Mixes run on a pool of
`workers` threads, never on the event loop; at most `max_waiting` more requests wait for one, the
rest are refused at once. A request that times out while waiting is dropped from the queue; one
that times out while mixing finishes on its thread (a mix cannot be interrupted) but the pool
still never runs more than `workers` at a time.
"""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import threading

from absl import logging
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import mixnet
from mixnet import errors
from mixnet.serve import mixing

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one service accepts: upload bytes and seconds, concurrent and waiting mixes, time."""
  max_upload_mb: float = 200.0
  max_duration_s: float = 20 * 60.0
  workers: int = 2
  max_waiting: int = 8
  timeout_s: float = 300.0
  retry_after_s: int = 5

  def __post_init__(self):
    for field in ("max_upload_mb", "max_duration_s", "workers", "timeout_s", "retry_after_s"):
      if not getattr(self, field) > 0:
        raise errors.MixnetError(f"--{field}: must be positive, got {getattr(self, field)}")
    if self.max_waiting < 0:
      raise errors.MixnetError(f"--max_waiting: must be 0 or more, got {self.max_waiting}")

  @property
  def max_upload_bytes(self):
    return int(self.max_upload_mb * 2**20)


class MixQueue:
  """Runs jobs on `workers` threads with at most `max_waiting` more queued; others get 503."""

  def __init__(self, limits):
    self.limits = limits
    self._pool = concurrent.futures.ThreadPoolExecutor(limits.workers, "mixnet-mix")
    self._lock = threading.Lock()
    self.pending = 0  # running + waiting

  def _release(self, _):
    with self._lock:
      self.pending -= 1

  async def run(self, fn, *args):
    """`fn(*args)` on a worker thread; its result, or its exception re-raised here."""
    with self._lock:
      if self.pending >= self.limits.workers + self.limits.max_waiting:
        raise mixing.RequestError(
            503, "busy", f"{self.pending} mixes are running or waiting; try again shortly",
            headers={"Retry-After": str(self.limits.retry_after_s)})
      self.pending += 1
    future = self._pool.submit(fn, *args)
    future.add_done_callback(self._release)
    try:
      return await asyncio.wait_for(asyncio.wrap_future(future), self.limits.timeout_s)
    except TimeoutError:
      raise mixing.RequestError(504, "timeout", f"the mix took longer than the limit of "
                                f"{self.limits.timeout_s:g} s") from None

  def close(self):
    self._pool.shutdown(wait=True, cancel_futures=True)


def _capped(receive, limit):
  """An ASGI `receive` that refuses a body longer than `limit` bytes as it streams in."""
  received = 0

  async def wrapped():
    nonlocal received
    message = await receive()
    received += len(message.get("body", b""))
    if received > limit:
      raise _too_big(limit)
    return message

  return wrapped


def _too_big(limit):
  return mixing.RequestError(413, "too_large", f"upload is larger than the limit of "
                             f"{limit / 2**20:.3g} MiB")


async def _read_upload(request, limit):
  """(bytes, client file name, option fields) of a multipart or raw-body mix request."""
  declared = request.headers.get("content-length", "")
  if declared.isdigit() and int(declared) > limit:
    raise _too_big(limit)
  request = Request(request.scope, _capped(request.receive, limit))
  content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
  fields = dict(request.query_params)
  if content_type == "multipart/form-data":
    async with request.form(max_files=1, max_fields=len(mixing.OPTIONS)) as form:
      files = [v for v in form.values() if isinstance(v, UploadFile)]
      if not files:
        raise mixing.RequestError(422, "no_file", "multipart request has no file field")
      fields.update({k: v for k, v in form.items() if isinstance(v, str)})
      return await files[0].read(), files[0].filename, fields
  if content_type in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
    raise mixing.RequestError(415, "unsupported_media", f"a {content_type} body is not audio; "
                              "send the file as multipart/form-data or as the raw body")
  return await request.body(), request.headers.get("x-filename", "upload"), fields


def create_app(model_path=None, limits=Limits(), processor=None):
  """The ASGI application; loads the engine (unless `processor` is given) and compiles it for
  every shape a request can need (`mixing.warm_up`).

  Args:
    model_path: training workdir or checkpoint folder; None mixes with the DSP chain.
    limits: a Limits.
    processor: an `infer.AudioProcessor` to serve instead of loading one (tests, embedding).
  """
  processor = processor or mixing.load_processor(model_path)
  compile_s = mixing.warm_up(processor)
  logging.info("engine %s ready (compiled in %.1f s)", processor.engine, compile_s)
  mixer = mixing.Mixer(processor, limits.max_duration_s)
  queue = MixQueue(limits)

  async def health(request):
    return JSONResponse({"status": "ok", "engine": processor.engine, "pending": queue.pending})

  async def info(request):
    return JSONResponse({**mixer.info(), "api": "v1", "version": mixnet.__version__,
                         "limits": dataclasses.asdict(limits)})

  async def mix(request):
    data, filename, fields = await _read_upload(request, limits.max_upload_bytes)
    options = mixing.MixOptions.parse(fields, mixer.presets)
    result = await queue.run(mixer.mix, data, filename, options)
    return Response(result.body, media_type=result.media_type, headers=result.headers)

  async def page(request):
    return FileResponse(os.path.join(STATIC_DIR, "index.html"))

  @contextlib.asynccontextmanager
  async def lifespan(app):
    yield
    queue.close()

  app = Starlette(routes=[
      Route("/", page), Route("/v1/health", health), Route("/v1/info", info),
      Route("/v1/mix", mix, methods=["POST"]), Mount("/static", StaticFiles(directory=STATIC_DIR)),
  ], exception_handlers={
      HTTPException: _http_error, errors.MixnetError: _request_error, Exception: _server_error,
  }, lifespan=lifespan)
  app.state.queue, app.state.engine = queue, processor.engine
  return app


def from_environment():
  """App factory for running several processes: `uvicorn --factory --workers N
  mixnet.serve.app:from_environment`, with the model in $MIXNET_MODEL_PATH (unset: DSP chain)."""
  return create_app(os.environ.get("MIXNET_MODEL_PATH") or None)


def _error(status, code, detail, headers=None):
  return JSONResponse({"error": code, "detail": detail}, status, headers=headers)


async def _http_error(request, exc):
  code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
  return _error(exc.status_code, code, exc.detail, exc.headers)


async def _request_error(request, exc):
  if isinstance(exc, mixing.RequestError):
    return _error(exc.status, exc.code, exc.detail, exc.headers)
  return _error(422, "invalid_request", str(exc))


async def _server_error(request, exc):
  # The ASGI server logs the traceback (Starlette re-raises after this response is sent).
  return _error(500, "internal", f"{type(exc).__name__}: the service failed on this request")
