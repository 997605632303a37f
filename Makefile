# Two commands on a fresh machine: `make demo` and `make test`. Each makes the local
# virtual environment first (.venv) with everything xaihls and its tests need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.xaihls-installed

.PHONY: demo test bench venv clean system-tools report-screenshot

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch pinned first: the CPU build (2.13.0 lies on this kind of machine's disk);
	# an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/xaihls demo --out demo_out

# Two pytest workers, each taking whole test files (a file's module fixtures and builds stay in
# one worker): most tests are one Python thread, so the second core was idle for most of the run.
TEST_WORKERS ?= 2

test: $(STAMP) system-tools
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Programs some tests drive outside Python, as command:Debian-package: tclsh runs the board
# flow's Vivado scripts under stand-ins (tests/test_board_flow.py), headless Chromium renders
# the HTML report (tests/test_report.py). Installed with apt-get where it exists and we are
# root (CI on a fresh machine); elsewhere the tests that need them skip and say why.
SYSTEM_TOOLS := tclsh:tcl chromium:chromium

system-tools:
	@missing=""; \
	for pair in $(SYSTEM_TOOLS); do \
	    command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -z "$$missing" ]; then \
	    true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	    echo "not installed:$$missing (needs apt-get as root); the tests that use them will skip"; \
	fi

# docs/report_screenshot.png, the picture in the README: the demo's report as headless Chromium draws it
report-screenshot: demo
	chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --force-device-scale-factor=1 \
	    --virtual-time-budget=5000 --window-size=1300,2600 --screenshot=$(CURDIR)/docs/report_screenshot.png \
	    file://$(CURDIR)/demo_out/report.html

# the benchmarks, each with what it measures; `.venv/bin/python -m benchmarks NAME` runs one
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo_out build *.egg-info
