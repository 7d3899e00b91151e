# Everything a newcomer needs: `make demo` and `make test` do their own set-up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BUILT := $(VENV)/.built
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RUST_SRC := $(shell find core-rs -name '*.rs' -o -name '*.lua' -o -name Cargo.toml) Cargo.toml
PY_SRC := $(shell find store api pacer sip_gateway -name '*.py' -o -name '*.pyi' -o -name '*.lua' -o -name py.typed) dialer_core.pyi pyproject.toml

.PHONY: setup system-deps test test-rust test-python demo demo-agents bench wheel clean

setup: system-deps $(BUILT)

# Debian packages: redis-server and redis-tools (redis-benchmark), sip-tester (sipp), espeak-ng
# (IVR prompts from text); for the TLS test, stunnel4 (TLS in front of sipp) and openssl; for the
# screens' browser tests, chromium and chromium-driver (driven by Selenium; no browser download).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-benchmark >/dev/null || missing="$$missing redis-tools"; \
	command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v stunnel4 >/dev/null || missing="$$missing stunnel4"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@# The packaged redis-server service is not ours: the dialer and the tests start their own.
	@command -v systemctl >/dev/null && systemctl is-active -q redis-server 2>/dev/null && $(SUDO) systemctl stop redis-server || true

# A venv with the project built in release mode (editable: Python edits apply at once, Rust
# edits rebuild on the next `make`).
$(BUILT): $(RUST_SRC) $(PY_SRC)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip maturin
	$(PY) -m pip install -q -e '.[test]'
	@touch $(BUILT)

test: setup test-rust test-python

test-rust:
	cargo clippy -q -p dialer-core --features python --all-targets -- -D warnings
	cargo test -p dialer-core

test-python: setup
	$(PY) -m mypy
	$(PY) -m mypy.stubtest dialer_core --allowlist tests/stubtest_allowlist.txt
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/dialer demo

# A predictive campaign with 10 simulated agents (sipp phones, a bot for the dispositions).
demo-agents: setup
	$(VENV)/bin/dialer demo --agents 10

# Benchmarks with timing on; each prints its figures beside the reference measured in the same run.
bench: setup
	$(PY) -m pytest bench -q -p no:cacheprovider --benchmark-enable -s

# Build the wheel and show what it holds.
wheel: setup
	$(PY) -m maturin build --release -o dist
	unzip -l dist/dialer-*.whl

clean:
	rm -rf $(VENV) target dist .pytest_cache
