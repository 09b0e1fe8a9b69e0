# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

.PHONY: install demo serve test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pins change.
$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m mixnet.demo --out_dir=$(DEMO_DIR)

# The mixing service and its page on http://127.0.0.1:8000/; e.g. SERVE_FLAGS=--model_path=W
serve: $(STAMP)
	$(PY) -m mixnet.serve $(SERVE_FLAGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) $(DEMO_DIR)
