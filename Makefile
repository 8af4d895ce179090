# Two commands matter: `make run` (demo on SQLite + in-process broker) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test check lint services browser clean

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "kinline needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/kinline migrate
	$(BIN)/kinline serve --demo

services:
	bash .ci/services

# Debian's Chromium for the browser tests (never a Playwright download). Installed with apt
# when missing and apt is usable (root); with CI=true a browser that cannot be installed fails
# loudly; elsewhere the browser tests then skip with a loud reason.
CHROMIUM ?= /usr/bin/chromium
# fonts-noto-cjk: the pages are Chinese by default; without a CJK font the screenshots that
# reviewers read show empty boxes (the tests themselves read the DOM, not pixels).
browser:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk) || true; \
	fi
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "browser: installing Debian's chromium with apt"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || true; \
	fi; \
	if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	case "$${CI:-}" in \
	  1|true|yes) echo "browser: CI=true and $(CHROMIUM) is missing and could not be installed (apt-get install chromium as root)" >&2; exit 1;; \
	  *) echo "browser: !!! $(CHROMIUM) is missing (install the chromium package as root); the browser tests will be SKIPPED" >&2;; \
	esac

test: $(STAMP) services browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check server channels storage bench tests
	$(BIN)/mypy server channels storage

check: lint test

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
