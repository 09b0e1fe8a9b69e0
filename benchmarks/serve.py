"""Throughput and latency of `python -m mixnet.serve` against `process_file` on the same files.

Run:
  .venv/bin/python benchmarks/serve.py                          # DSP chain, 4 clients, 30 s
  .venv/bin/python benchmarks/serve.py --config base.py:tiny --clients 4 --workers 2
  .venv/bin/python benchmarks/serve.py --model_path runs/base --seconds 60

Writes `--files` synthetic 30-s vocals (44.1 kHz mono, 24-bit WAV). First `process_file` mixes
them one after another for `--seconds` in this process (the baseline: one caller, engine loaded
once). Then the service runs as its own process on a free loopback port, and `--clients` threads
post the same files as raw bodies for `--seconds`, each waiting for its answer before sending the
next. Printed: audio seconds mixed per wall second, p50/p95 latency of a request, requests,
errors (any status but 200, or an answer whose length differs from the upload), the server's
resident memory when it was ready and at the end (Linux /proc), and the service's throughput as
a share of the baseline's (target: at least 0.8). `--config` writes a checkpoint of freshly
initialised weights of that experiment config (speed does not depend on the weights' values).
"""

import argparse
import http.client
import importlib.util
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import soundfile as sf

from mixnet import audio, infer
from mixnet.data import synthetic
from mixnet.serve import mixing

SR = 44100
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _infer_benchmark():
  """benchmarks/infer.py, for its config loading and fresh-checkpoint writing."""
  spec = importlib.util.spec_from_file_location(
      "bench_infer", os.path.join(os.path.dirname(__file__), "infer.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def rss_mib(pid):
  with open(f"/proc/{pid}/status") as f:
    kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
  return kib / 1024


def baseline(paths, model_path, seconds, out_dir):
  """(audio s per s, latencies) of `process_file` over `paths` in turn for `seconds`."""
  processor = mixing.load_processor(model_path)  # the service's engine, built the same way
  processor.compile()
  out_path = os.path.join(out_dir, "mixed.wav")
  infer.process_file(paths[0], out_path, processor=processor, overwrite=True)
  latencies, mixed_s = [], 0.0
  start = time.perf_counter()
  while time.perf_counter() - start < seconds:
    path = paths[len(latencies) % len(paths)]
    t0 = time.perf_counter()
    summary = infer.process_file(path, out_path, processor=processor, overwrite=True)
    latencies.append(time.perf_counter() - t0)
    mixed_s += summary["duration_s"]
  return mixed_s / (time.perf_counter() - start), latencies


def start_server(model_path, workers, clients):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  flags = [f"--port={port}", f"--workers={workers}", f"--max_waiting={clients}"]
  if model_path:
    flags.append(f"--model_path={model_path}")
  proc = subprocess.Popen([sys.executable, "-m", "mixnet.serve", *flags], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline:
    if proc.poll() is not None:
      raise SystemExit(f"the service exited with status {proc.returncode} before it was ready")
    try:
      with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1):
        return proc, port
    except OSError:
      time.sleep(0.2)
  proc.kill()
  raise SystemExit("the service did not start within 300 s")


def post(port, body):
  """One mix request on a fresh connection; the number of frames answered, or None on error."""
  connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
  try:
    connection.request("POST", "/v1/mix", body=body, headers={"Content-Type": "audio/wav"})
    response = connection.getresponse()
    data = response.read()
    return sf.info(io.BytesIO(data)).frames if response.status == 200 else None
  except (OSError, http.client.HTTPException):
    return None
  finally:
    connection.close()


def client(port, bodies, frames, seconds, results):
  """Posts `bodies` in turn until `seconds` pass; appends (latency s, audio s or None on error)."""
  deadline, i = time.perf_counter() + seconds, 0
  while time.perf_counter() < deadline:
    k = i % len(bodies)
    i += 1
    t0 = time.perf_counter()
    ok = post(port, bodies[k]) == frames[k]
    results.append((time.perf_counter() - t0, frames[k] / SR if ok else None))


def load_test(paths, model_path, args):
  """Runs the service and its clients; (audio s per s, latencies, errors, rss start, rss end)."""
  bodies = [open(p, "rb").read() for p in paths]
  frames = [sf.info(p).frames for p in paths]
  proc, port = start_server(model_path, args.workers, args.clients)
  try:
    if post(port, bodies[0]) != frames[0]:  # one request first, as the baseline warms up
      raise SystemExit("the service's first mix failed")
    rss_start = rss_mib(proc.pid)
    results = []
    threads = [threading.Thread(target=client, args=(port, bodies[c:] + bodies[:c], frames[c:]
                                                     + frames[:c], args.seconds, results))
               for c in range(args.clients)]
    start = time.perf_counter()
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    wall = time.perf_counter() - start
    rss_end = rss_mib(proc.pid)
  finally:
    proc.terminate()
    proc.wait(30)
  mixed = [a for _, a in results if a is not None]
  return (sum(mixed) / wall, [lat for lat, _ in results], len(results) - len(mixed), rss_start,
          rss_end)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model_path", default=None, help="workdir or checkpoint; default: DSP")
  parser.add_argument("--config", default=None, help="e.g. base.py:tiny: fresh-weights model")
  parser.add_argument("--clients", type=int, default=4)
  parser.add_argument("--workers", type=int, default=2, help="the service's --workers")
  parser.add_argument("--files", type=int, default=4)
  parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    model_path = args.model_path
    if args.config:
      bench_infer = _infer_benchmark()
      model_path = os.path.join(tmp, "model")
      bench_infer.write_checkpoint(bench_infer._load_config(args.config), model_path)
    paths = []
    for i in range(args.files):
      paths.append(os.path.join(tmp, f"vocal_{i}.wav"))
      audio.save(paths[-1], synthetic.synth_vocal(30.0, SR, seed=100 + i), SR)
    engine = args.config or model_path or "DSP chain"
    print(f"# {args.files} x 30 s mono vocals at {SR} Hz; engine {engine}; {args.clients} "
          f"clients, {args.workers} workers; {args.seconds:g} s per phase; {os.cpu_count()} "
          f"CPUs, load average {os.getloadavg()[0]:.1f}")
    base_rate, base_lat = baseline(paths, model_path, args.seconds, tmp)
    rate, lat, errors, rss_start, rss_end = load_test(paths, model_path, args)
  print(f"{'what':<26}{'audio s/s':>10}{'p50 s':>8}{'p95 s':>8}{'requests':>10}{'errors':>8}"
        f"{'server RSS MiB start/end':>26}")
  for name, r, lats, errs, rss in [
      ("process_file (1 caller)", base_rate, base_lat, 0, "-"),
      (f"service ({args.clients} clients)", rate, lat, errors, f"{rss_start:.0f} / {rss_end:.0f}")]:
    p50, p95 = np.percentile(lats, [50, 95]) if lats else (float("nan"),) * 2
    print(f"{name:<26}{r:>10.1f}{p50:>8.2f}{p95:>8.2f}{len(lats):>10}{errs:>8}{rss:>26}")
  print(f"service / process_file: {rate / base_rate:.2f} (target >= 0.80)")


if __name__ == "__main__":
  main()
