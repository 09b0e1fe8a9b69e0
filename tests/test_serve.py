"""The mixing service's HTTP API: every endpoint, every refused input, limits, concurrency, CLI."""

import asyncio
import contextlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import httpx2
import numpy as np
import pytest
import soundfile as sf
from starlette.testclient import TestClient

from mixnet import dsp
from mixnet.data import synthetic
from mixnet.serve import app as serve_app
from mixnet.serve import mixing

SR = 16000
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wav_bytes(x_tc, sample_rate=SR, subtype="PCM_24", fmt="WAV"):
  buffer = io.BytesIO()
  sf.write(buffer, x_tc, sample_rate, subtype=subtype, format=fmt)
  return buffer.getvalue()


def read_audio(data):
  y_tc, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
  return y_tc, sample_rate


def vocal(seconds=1.0, seed=0, channels=1, sample_rate=SR):
  x = synthetic.synth_vocal(seconds, sample_rate, seed=seed)
  return np.repeat(x, channels, axis=1) * (np.arange(channels) * 0.3 + 0.7)


@pytest.fixture(scope="module")
def dsp_processor():
  return mixing.load_processor(None)


@pytest.fixture(scope="module")
def client(dsp_processor):
  with TestClient(serve_app.create_app(processor=dsp_processor)) as c:
    yield c


@pytest.fixture(scope="module")
def model_workdir(tmp_path_factory):
  """A workdir whose best checkpoint is a tiny 16 kHz model with small random weights (what the
  service does with a model does not depend on the weights' values; drawing them with numpy
  skips compiling the model's initialiser)."""
  import jax
  import jax.numpy as jnp

  from experiments import base
  from mixnet import checkpoints, models

  config = base.get_config("tiny")
  config.sample_rate = SR
  config.model.time_unet.update(base_width=4, max_width=16)
  shapes = jax.eval_shape(models.build(config.model).init, jax.random.key(0),
                          jnp.zeros((1, 4096, config.model.channels)))["params"]
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: rng.normal(0, 0.05, s.shape).astype(s.dtype), shapes)
  workdir = str(tmp_path_factory.mktemp("model"))
  ckpts = checkpoints.RunCheckpoints(workdir)
  ckpts.save_best(7, params, checkpoints.make_meta(config, 7, 0.5), 0.5)
  ckpts.wait()
  ckpts.close()
  return workdir


def expected_mix(processor, x_tc, sample_rate=SR, preset=None):
  """What the engine itself makes of `x_tc`, through the same 24-bit WAV the service sends."""
  return read_audio(wav_bytes(processor.process_vocal(x_tc, preset, sample_rate=sample_rate),
                              sample_rate))[0]


def error_of(response, status, code):
  assert response.status_code == status, response.text
  body = response.json()
  assert body["error"] == code and body["detail"], body
  return body["detail"]


def test_health_and_info(client):
  assert client.get("/v1/health").json() == {"status": "ok", "engine": "dsp", "pending": 0}
  info = client.get("/v1/info").json()
  assert info["engine"] == "dsp" and info["model"] is None
  assert info["fallback_reason"] == "no checkpoint given"
  assert info["presets"] == sorted(dsp.PRESETS) and info["default_preset"] == "default"
  assert info["formats"] == ["wav", "flac"] and info["api"] == "v1"
  assert info["limits"]["workers"] == serve_app.Limits().workers


def test_page_and_its_assets_are_served_from_the_package(client):
  page = client.get("/")
  assert page.status_code == 200 and "text/html" in page.headers["content-type"]
  for asset in ("static/app.js", "static/style.css"):
    assert asset in page.text
    assert client.get("/" + asset).status_code == 200
  # Offline: nothing is loaded from another host.
  assert "http" not in page.text and "//" not in client.get("/static/style.css").text


@pytest.mark.parametrize("channels,sample_rate", [(1, SR), (2, 22050)])
def test_multipart_mix_keeps_length_rate_channels_and_is_the_engine_mix(
    client, dsp_processor, channels, sample_rate):
  x_tc = vocal(0.8, seed=channels, channels=channels, sample_rate=sample_rate)
  r = client.post("/v1/mix", files={"file": ("take one.wav", wav_bytes(x_tc, sample_rate))},
                  data={"preset": "warm"})
  assert r.status_code == 200, r.text
  assert r.headers["content-type"] == "audio/wav"
  assert r.headers["content-disposition"] == 'attachment; filename="take_one_mixed.wav"'
  assert r.headers["x-mixnet-engine"] == "dsp" and r.headers["x-mixnet-preset"] == "warm"
  assert float(r.headers["x-mixnet-duration-s"]) == pytest.approx(x_tc.shape[0] / sample_rate,
                                                                  abs=1e-3)
  assert float(r.headers["x-mixnet-processing-s"]) > 0
  y_tc, out_sr = read_audio(r.content)
  assert out_sr == sample_rate and y_tc.shape == x_tc.shape
  x_sent = read_audio(wav_bytes(x_tc, sample_rate))[0]
  np.testing.assert_allclose(y_tc, expected_mix(dsp_processor, x_sent, sample_rate, "warm"),
                             atol=1e-6)


def test_raw_body_flac_and_output_loudness(client):
  x_tc = vocal(2.0, seed=3)
  r = client.post("/v1/mix?format=flac&loudness_lufs=-20", content=wav_bytes(x_tc),
                  headers={"content-type": "audio/wav", "x-filename": "../../etc/vox.wav"})
  assert r.status_code == 200, r.text
  assert r.headers["content-type"] == "audio/flac"
  assert r.headers["content-disposition"] == 'attachment; filename="vox_mixed.flac"'
  y_tc, out_sr = read_audio(r.content)
  assert out_sr == SR and y_tc.shape == x_tc.shape
  assert dsp.integrated_loudness(y_tc, SR) == pytest.approx(-20.0, abs=0.5)
  assert float(r.headers["x-mixnet-output-lufs"]) == pytest.approx(-20.0, abs=0.5)


def test_client_file_names_never_become_paths():
  assert mixing.clean_name("../../etc/passwd") == "passwd"
  assert mixing.clean_name("C:\\Users\\me\\vocal take.wav") == "vocal_take.wav"
  assert mixing.clean_name("") == mixing.clean_name("../..") == "upload"


def test_unreadable_and_unusable_uploads(client):
  stereo = wav_bytes(vocal(0.5))
  cases = [
      (b"", 422, "unusable_audio", "empty"),
      (b"this is not audio at all" * 10, 415, "unsupported_media", "not a readable audio"),
      (stereo[:len(stereo) // 2], 422, "unusable_audio", "truncated"),
      (wav_bytes(np.zeros((800, 3), np.float32)), 422, "unusable_audio", "3 channels"),
      (wav_bytes(np.full((800, 1), np.nan, np.float32), subtype="FLOAT"), 422, "unusable_audio",
       "NaN"),
  ]
  for data, status, code, words in cases:
    r = client.post("/v1/mix", files={"file": ("bad.wav", data)})
    detail = error_of(r, status, code)
    assert words in detail and detail.startswith("bad.wav: "), detail
    assert "mixnet-upload" not in detail  # the server's temporary file is never named


def test_refused_requests_and_options(client):
  ok = wav_bytes(vocal(0.3))
  assert "multipart/form-data" in error_of(client.post("/v1/mix", json={"audio": 1}), 415,
                                           "unsupported_media")
  error_of(client.post("/v1/mix", data={"preset": "warm"}, files={"x": (None, "y")}), 422,
           "no_file")
  two = [("file", ("a.wav", ok)), ("file", ("b.wav", ok))]
  assert "Too many files" in error_of(client.post("/v1/mix", files=two), 400, "bad_request")
  for query, words in [("speed=0.5", "unknown option(s) speed"),
                       ("preset=loud", "preset 'loud' is not offered"),
                       ("format=mp3", "format 'mp3'"),
                       ("loudness_lufs=-3", "from -40 to -6"),
                       ("loudness_lufs=abc", "loudness_lufs 'abc'")]:
    assert words in error_of(client.post(f"/v1/mix?{query}", content=ok), 422, "invalid_option")
  error_of(client.get("/v1/nothing"), 404, "not_found")
  error_of(client.get("/v1/mix"), 405, "method_not_allowed")


def test_size_and_duration_limits(dsp_processor):
  limits = serve_app.Limits(max_upload_mb=0.05, max_duration_s=1.0)
  with TestClient(serve_app.create_app(processor=dsp_processor, limits=limits)) as c:
    big = wav_bytes(vocal(1.5))  # 72 KiB > 51 KiB
    assert "0.05 MiB" in error_of(c.post("/v1/mix", content=big), 413, "too_large")
    # Without a Content-Length the body is counted as it streams in.
    chunks = (big[i:i + 4096] for i in range(0, len(big), 4096))
    error_of(c.post("/v1/mix", content=chunks), 413, "too_large")
    error_of(c.post("/v1/mix", files={"file": ("big.wav", big)}), 413, "too_large")
    long = wav_bytes(vocal(1.2), subtype="PCM_16")  # 38 KiB, 1.2 s
    assert "1.2 s" in error_of(c.post("/v1/mix", content=long), 413, "too_long")
    assert c.post("/v1/mix", content=wav_bytes(vocal(0.9), subtype="PCM_16")).status_code == 200


def test_uploads_leave_no_file_behind(client, tmp_path, monkeypatch):
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  big = wav_bytes(vocal(25.0))  # over the 1 MiB that multipart parts keep in memory
  assert client.post("/v1/mix", files={"file": ("big.wav", big)}).status_code == 200
  assert client.post("/v1/mix", content=big).status_code == 200
  assert client.post("/v1/mix", content=b"junk" * 100).status_code == 415
  assert os.listdir(tmp_path) == []


class Gate:
  """Holds every mix of `processor` until `open()`: makes busy and slow services on demand."""

  def __init__(self, processor, monkeypatch):
    self.event = threading.Event()
    original = processor.process_vocal

    def held(*args, **kwargs):
      assert self.event.wait(30), "test gate never opened"
      return original(*args, **kwargs)

    monkeypatch.setattr(processor, "process_vocal", held)

  def open(self):
    self.event.set()


async def _wait_pending(app, count):
  for _ in range(500):
    if app.state.queue.pending >= count:
      return
    await asyncio.sleep(0.01)
  raise AssertionError(f"never saw {count} pending mixes")


def _async_client(app):
  return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test")


def test_busy_service_answers_503_with_retry_after(dsp_processor, monkeypatch):
  gate = Gate(dsp_processor, monkeypatch)
  app = serve_app.create_app(processor=dsp_processor,
                             limits=serve_app.Limits(workers=1, max_waiting=1, retry_after_s=7))
  body = wav_bytes(vocal(0.3))

  async def scenario():
    async with _async_client(app) as c:
      held = [asyncio.create_task(c.post("/v1/mix", content=body)) for _ in range(2)]
      await _wait_pending(app, 2)
      refused = await c.post("/v1/mix", content=body)
      gate.open()
      return refused, await asyncio.gather(*held)

  refused, held = asyncio.run(scenario())
  error_of(refused, 503, "busy")
  assert refused.headers["retry-after"] == "7"
  assert [r.status_code for r in held] == [200, 200]
  assert app.state.queue.pending == 0


def test_slow_mix_times_out_with_504(dsp_processor, monkeypatch):
  gate = Gate(dsp_processor, monkeypatch)
  app = serve_app.create_app(processor=dsp_processor, limits=serve_app.Limits(timeout_s=0.2))
  with TestClient(app) as c:
    try:
      r = c.post("/v1/mix", content=wav_bytes(vocal(0.3)))
    finally:
      gate.open()  # before the app shuts down: its pool waits for the held mix
  assert "0.2 s" in error_of(r, 504, "timeout")


def test_concurrent_requests_each_get_their_own_mix(dsp_processor):
  app = serve_app.create_app(processor=dsp_processor, limits=serve_app.Limits(workers=3))
  takes = [vocal(0.4 + 0.1 * i, seed=10 + i, channels=1 + i % 2) for i in range(6)]
  presets = ["default", "radio", "bright", "warm", "intimate", "default"]

  async def scenario():
    async with _async_client(app) as c:
      return await asyncio.gather(*[
          c.post("/v1/mix", files={"file": (f"t{i}.wav", wav_bytes(x))}, data={"preset": p})
          for i, (x, p) in enumerate(zip(takes, presets, strict=True))])

  for i, r in enumerate(asyncio.run(scenario())):
    assert r.status_code == 200 and r.headers["content-disposition"].endswith(f'"t{i}_mixed.wav"')
    sent = read_audio(wav_bytes(takes[i]))[0]
    np.testing.assert_allclose(read_audio(r.content)[0],
                               expected_mix(dsp_processor, sent, preset=presets[i]), atol=1e-6)


def test_model_engine(model_workdir):
  import jax

  app = serve_app.create_app(model_path=model_workdir)
  compiles = []

  def on_event(event, seconds, **kwargs):
    if event.endswith("backend_compile_duration"):
      compiles.append(event)

  def on_cache_hit(event, **kwargs):
    # The test run shares a persistent compilation cache (conftest): a program it serves is a
    # compile that fires no backend_compile_duration event, so count those too.
    if event.endswith("compilation_cache/cache_hits"):
      compiles.append(event)

  jax.monitoring.register_event_duration_secs_listener(on_event)
  jax.monitoring.register_event_listener(on_cache_hit)
  with TestClient(app) as c:
    try:
      # Compiled at start for every batch shape: requests of any length compile nothing.
      for seconds, channels in [(0.3, 1), (2.5, 2), (17.0, 1)]:
        r = c.post("/v1/mix", content=wav_bytes(vocal(seconds, channels=channels)))
        assert r.status_code == 200, r.text
    finally:
      jax.monitoring.unregister_event_duration_listener(on_event)
      jax.monitoring.unregister_event_listener(on_cache_hit)
    assert compiles == []
    info = c.get("/v1/info").json()
    assert info["engine"] == "model" and info["presets"] == []
    assert info["model"]["sample_rate"] == SR and info["model"]["step"] == 7
    assert info["model"]["version"].endswith("best/7")
    assert model_workdir not in str(info)  # no server paths
    x_tc = vocal(1.0, seed=5, channels=2, sample_rate=22050)
    r = c.post("/v1/mix", content=wav_bytes(x_tc, 22050))
    assert r.status_code == 200 and r.headers["x-mixnet-engine"] == "model"
    assert "x-mixnet-preset" not in r.headers
    y_tc, out_sr = read_audio(r.content)
    assert out_sr == 22050 and y_tc.shape == x_tc.shape and np.std(y_tc) > 0
    detail = error_of(c.post("/v1/mix?preset=warm", content=wav_bytes(x_tc, 22050)), 422,
                      "invalid_option")
    assert "mixes with a model" in detail


def test_limits_are_checked():
  with pytest.raises(ValueError, match="--workers: must be positive"):
    serve_app.Limits(workers=0)
  with pytest.raises(ValueError, match="--max_waiting"):
    serve_app.Limits(max_waiting=-1)


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def running_service(*flags):
  """`python -m mixnet.serve` on a free loopback port; yields its base URL, stops it after."""
  port = free_port()
  proc = subprocess.Popen([sys.executable, "-m", "mixnet.serve", f"--port={port}", *flags],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  url = f"http://127.0.0.1:{port}"
  try:
    deadline = time.time() + 60
    while True:
      assert proc.poll() is None, proc.stdout.read()
      try:
        with urllib.request.urlopen(url + "/v1/health", timeout=1) as r:
          if r.status == 200:
            break
      except OSError:
        assert time.time() < deadline, "the service did not start within 60 s"
        time.sleep(0.2)
    yield url
  finally:
    proc.terminate()
    proc.wait(10)


def test_cli_serves_on_loopback():
  with running_service() as url:
    with urllib.request.urlopen(url + "/v1/info", timeout=5) as r:
      assert b'"engine":"dsp"' in r.read()


def test_cli_usage_error():
  run = subprocess.run([sys.executable, "-m", "mixnet.serve", "--port=70000"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
  assert run.returncode == 1 and "--port=70000: expected 0 to 65535" in run.stderr


def test_cli_refuses_a_model_it_cannot_load(tmp_path):
  run = subprocess.run([sys.executable, "-m", "mixnet.serve", f"--model_path={tmp_path}/none"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
  assert run.returncode == 2, run.stderr
  assert run.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path}/none: ")
  assert "Traceback" not in run.stderr


def test_a_bug_is_a_json_500(dsp_processor, monkeypatch):
  def broken(*args, **kwargs):
    raise RuntimeError("engine bug")

  monkeypatch.setattr(dsp_processor, "process_vocal", broken)
  with TestClient(serve_app.create_app(processor=dsp_processor),
                  raise_server_exceptions=False) as c:
    detail = error_of(c.post("/v1/mix", content=wav_bytes(vocal(0.3))), 500, "internal")
  assert detail.startswith("RuntimeError")


def test_app_factory_for_several_processes(monkeypatch, tmp_path):
  monkeypatch.delenv("MIXNET_MODEL_PATH", raising=False)
  assert serve_app.from_environment().state.engine == "dsp"
  monkeypatch.setenv("MIXNET_MODEL_PATH", str(tmp_path / "none"))
  with pytest.raises(ValueError, match="does not exist"):
    serve_app.from_environment()
