"""The mixing service: an HTTP API and a web page over `mixnet.infer.AudioProcessor`.

Run it with `python -m mixnet.serve [--model_path=WORKDIR]`; `mixnet.serve.app.create_app`
builds the ASGI application (Starlette) for tests or another ASGI server. `mixing` holds the work
of one request (decode the upload, mix, encode), `app` the routes and limits, `static/` the page.
"""
