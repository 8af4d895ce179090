# Two commands matter: `make run` (demo on SQLite + in-process broker) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# What gets installed is pinned by constraints.txt (`make lock` refreshes it). A venv is stamped
# with what it holds and the checksum of the files that decide it, so editing setup.cfg or the
# constraints reinstalls. `make run` needs only the serving packages; `make test`, `lint` and
# `check` need the test and lint tools too, and a venv that has those also serves.
KEY         := $(shell cat setup.cfg pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
SERVE_STAMP := $(VENV)/.installed-serve-$(KEY)
TEST_STAMP  := $(VENV)/.installed-test-$(KEY)
SERVING     := $(if $(wildcard $(TEST_STAMP)),$(TEST_STAMP),$(SERVE_STAMP))

# What ruff and strict mypy read (a package that does not exist yet is left out).
CHECKED := $(wildcard domain server channels storage bench tests)
RESULTS := var/test-results

.PHONY: run test check lint lock services browser clean

define install
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "kinline needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '$(1)'
	find $(VENV) -maxdepth 1 -name '.installed-*' ! -name '*-$(KEY)' -delete
	touch $@
endef

$(SERVE_STAMP): setup.cfg pyproject.toml constraints.txt
	$(call install,.)

$(TEST_STAMP): setup.cfg pyproject.toml constraints.txt
	$(call install,.[test])

# Resolve setup.cfg afresh (the newest versions it allows) in a scratch venv and pin the result.
# pip itself is pinned too (--all); setuptools is not: venvs bundle it or not by Python version.
# Run `make check` after it, and commit constraints.txt with what it needed.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --upgrade pip
	$(VENV)-lock/bin/python -m pip install --quiet -e '.[test]'
	{ echo '# The versions the suite passes with: every install uses them (pip install -c).'; \
	  echo '# Written by `make lock` (the newest that setup.cfg allows); do not edit by hand.'; \
	  $(VENV)-lock/bin/python -m pip freeze --all --exclude-editable | grep -v '^setuptools=='; \
	} > constraints.txt
	rm -rf $(VENV)-lock

run: $(SERVING)
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

# The pure tests (no PostgreSQL, Redis, browser or child process: tests/purity.py) first and
# alone, in asyncio debug mode with warnings as errors (PYTHONASYNCIODEBUG for every loop, and
# --asyncio-debug as pytest-asyncio otherwise turns debug off on its own); then all the others.
# Each test runs
# once; the last line adds the two runs up. Exit status 5 is a run that selected no test
# (PYTEST_ARGS chose only the other kind); a `make test` that ran no test at all fails.
test: $(TEST_STAMP) services browser
	rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -m pure -W error --asyncio-debug --junit-xml=$(RESULTS)/pure.xml $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m 'not pure' --junit-xml=$(RESULTS)/others.xml $(PYTEST_ARGS) || [ $$? -eq 5 ]
	@$(BIN)/python .ci/tally.py $(RESULTS)/pure.xml $(RESULTS)/others.xml

lint: $(TEST_STAMP)
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)
	$(BIN)/mypy $(CHECKED)

# What CI runs (.ci/run): ruff (lint and format) and strict mypy, then the README's test command.
check: lint
	$(MAKE) test

clean:
	rm -rf $(VENV) $(VENV)-lock var .pytest_cache .mypy_cache .ruff_cache .hypothesis
