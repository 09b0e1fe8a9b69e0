r"""`python -m mixnet.serve`: the mixing service and its web page on one port.

  python -m mixnet.serve [--model_path=WORKDIR] [--host=127.0.0.1] [--port=8000] [--workers=2]

Without `--model_path` the DSP vocal chain mixes (its presets can be chosen per request) and
`/v1/info` says so; with it the model must load, or the service does not start. The page is at
`http://HOST:PORT/`, the API under `/v1/` (see `mixnet.serve.app`). The page calls the API by
relative URLs, so a reverse proxy may serve both under a path prefix that it strips.
"""

import ipaddress

from absl import app, flags, logging

from mixnet import cli

flags.DEFINE_string("model_path", None, "Training workdir or checkpoint folder; without it the "
                    "DSP vocal chain mixes.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; 0.0.0.0 opens the service to "
                    "every machine that can reach this one.")
flags.DEFINE_integer("port", 8000, "TCP port.")
flags.DEFINE_integer("workers", 2, "Mixes that run at the same time (threads sharing one engine).")
flags.DEFINE_integer("max_waiting", 8, "Requests that may wait for a worker; more get 503.")
flags.DEFINE_float("max_upload_mb", 200.0, "Largest upload, MiB (413 above).")
flags.DEFINE_float("max_duration_s", 1200.0, "Longest audio accepted, seconds (413 above).")
flags.DEFINE_float("timeout_s", 300.0, "Longest a request may wait and mix, seconds (504 above).")
flags.DEFINE_list("forwarded_allow_ips", ["127.0.0.1"], "Proxies whose X-Forwarded-* headers "
                  "are trusted.")

FLAGS = flags.FLAGS


def main(argv):
  """Loads and compiles the engine once, then serves until interrupted."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not 0 <= FLAGS.port <= 65535:
    raise app.UsageError(f"--port={FLAGS.port}: expected 0 to 65535")
  import uvicorn

  from mixnet.serve import app as serve_app

  limits = serve_app.Limits(max_upload_mb=FLAGS.max_upload_mb,
                            max_duration_s=FLAGS.max_duration_s, workers=FLAGS.workers,
                            max_waiting=FLAGS.max_waiting, timeout_s=FLAGS.timeout_s)
  application = serve_app.create_app(FLAGS.model_path, limits)
  if not _is_loopback(FLAGS.host):
    logging.warning("listening on %s: anyone who can reach this machine can use the service",
                    FLAGS.host)
  print(f"mixnet.serve: {application.state.engine} engine, page at "
        f"http://{FLAGS.host}:{FLAGS.port}/", flush=True)
  uvicorn.run(application, host=FLAGS.host, port=FLAGS.port,
              forwarded_allow_ips=FLAGS.forwarded_allow_ips, log_level="info")


def _is_loopback(host):
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return host == "localhost"


if __name__ == "__main__":
  cli.run(main)
