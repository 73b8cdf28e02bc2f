# ursa: `make serve` and `make test` set everything up on a fresh Debian
# machine (as root) and are the two commands the README names.
# Not named PYTHON: make would pass a PYTHON of the environment or the command
# line to scripts/setup.sh with this value, and PYTHON=... picks .venv's interpreter there.
VENV_PYTHON := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: setup build serve test test-asan test-pythons wheel fuzz soak bench bench-asgi bench-ws clean

setup:
	bash scripts/setup.sh

build: setup
	$(VENV_PYTHON) -m pip install --no-build-isolation --disable-pip-version-check -q -e .

serve: build
	$(VENV_PYTHON) examples/hello.py $(HOST) $(PORT)

test: build
	$(VENV_PYTHON) -m pytest tests $(PYTEST_ARGS)

# The whole suite against a build with AddressSanitizer and UBSan. CPython
# itself is not instrumented, so the ASan runtime is preloaded, and
# PYTHONMALLOC=malloc lets ASan see every Python allocation.
test-asan: setup
	bash scripts/test-asan.sh $(PYTEST_ARGS)

# The core and robustness suites on CPython 3.8, 3.11 and 3.12 (URSA_PYTHONS): the
# oldest supported, the oldest with ASGI, and 3.12's asyncio; `make test` runs on the newest.
test-pythons: setup
	bash scripts/test-pythons.sh $(PYTEST_ARGS)

# The sdist and a self-contained manylinux wheel per CPython 3.8-3.13 found
# (URSA_WHEEL_PYTHONS), into dist/; installs what it needs (see the script).
wheel:
	bash scripts/build-wheels.sh

# libFuzzer over the request path for FUZZ_SECONDS (default 60); see fuzz/run.sh.
fuzz: build
	bash fuzz/run.sh

# 200k keep-alive GETs and 200k POSTs; fails when RSS grows 5 MB or more.
soak: build
	$(VENV_PYTHON) scripts/soak.py

# Every installed WSGI server against bjoern, nginx as the ceiling, and the ASGI
# servers (ursa, uvicorn, granian, hypercorn) against uvicorn, over HTTP and over
# WebSockets, in one table and chart (~36 minutes); writes
# bench/results/latest.{md,png,json}. BENCH_ARGS=--quick: a smoke run. The servers
# run on .venv's interpreter, the newest CPython present; PYTHON=/path/to/python3.X
# make bench makes .venv of that one first (scripts/setup.sh).
bench: build
	bash scripts/bench-setup.sh
	$(VENV_PYTHON) bench/compare.py $(BENCH_ARGS)

# The ASGI family alone (~12 minutes), into bench/results/asgi-latest.*.
bench-asgi: build
	bash scripts/bench-setup.sh
	$(VENV_PYTHON) bench/compare.py --families asgi --output bench/results/asgi-latest $(BENCH_ARGS)

# The WebSocket family alone (~8 minutes), into bench/results/ws-latest.*:
# echo, broadcast and memory per idle WebSocket (issue 11). BENCH_ARGS=--quick: a smoke run.
bench-ws: build
	bash scripts/bench-setup.sh
	$(VENV_PYTHON) bench/compare.py --families ws --output bench/results/ws-latest $(BENCH_ARGS)

clean:
	rm -rf build dist src/ursa/*.so src/*.egg-info
