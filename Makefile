# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench soak clean system-packages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Run the whole system on embedded defaults, with demo data.
run: $(STAMP)
	$(BIN)/inbox dev

## Install and run the tests.
test: $(STAMP) system-packages
	$(BIN)/ruff check .
	$(BIN)/pytest

## Debian packages some tests use: Chromium for the browser tests (Playwright never downloads a
## browser) and Prometheus (promtool checks the alert rules; the dev stack runs Prometheus).
## Installed when missing and we may (root with apt-get); otherwise those tests are skipped.
SYSTEM_PACKAGES := /usr/bin/chromium:chromium /usr/bin/promtool:prometheus
system-packages:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	  [ -x "$${entry%%:*}" ] || missing="$$missing $${entry##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
	      >/dev/null || echo "could not install$$missing: the tests needing it will be skipped"; \
	  else \
	    echo "missing$$missing and no way to install it here: the tests needing it are skipped"; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .

## The long version of the crash and fault tests (RELIABILITY.md): minute-long outages, more
## traffic, each service killed under load for longer; figures printed.
soak: $(STAMP)
	INBOX_SOAK=1 $(BIN)/pytest tests/test_faults.py -s -p no:cacheprovider

## Benchmarks (figures printed; see README "Performance").
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf .inbox
