# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean browser

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
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/pytest

## Chromium for the browser tests (Debian's package; Playwright never downloads a browser).
## Installed when missing and we may (root with apt-get); otherwise those tests are skipped.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      >/dev/null || echo "chromium could not be installed: the browser tests will be skipped"; \
	  else \
	    echo "no $(CHROMIUM) and no way to install it here: the browser tests will be skipped"; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .

## Benchmarks (figures printed; see README "Performance").
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf .inbox
