# The whole set-up is two commands on a machine with Python 3.10+:
#   make demo   create .venv/, install, run the main job
#   make test   create/install as needed, run every test (pytest, nbval on the notebooks)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBGRADER := cd autograder && ../$(BIN)/nbgrader
ASSIGNMENTS := $(notdir $(wildcard solutions/[0-9]*))
# Tests run in parallel on every core; set JOBS=1 to run them serially.
JOBS   ?= auto

.PHONY: help venv demo test test-fast lint release student lab bench bench-grading sandbox postgres browser clean

help:
	@echo "make demo       install into .venv/, train an MLP on the digits, grade the sample class"
	@echo "make test       install into .venv/ and run every test (pytest + nbval)"
	@echo "make test-fast  the tests without the notebook runs"
	@echo "make release    regenerate notebooks/ (the student release) from solutions/, the sample class"
	@echo "                and the student bundle dist/student/ (notebooks, compiled library wheel, README)"
	@echo "make student    build just the student bundle dist/student/ from notebooks/ and course/"
	@echo "make lab        open the student notebooks in JupyterLab"
	@echo "make bench      run the library benchmark"
	@echo "make bench-grading  grade a synthetic class: stock nbgrader, serial, N workers (~20 min, root)"
	@echo "make lint       ruff check, ruff format --check, mypy on course/ and autograder/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "error: Python 3.10 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages some parts need, installed when we are root on Debian; otherwise a warning
# says what will not work. $(call apt_install,PACKAGE,TEST,PURPOSE,WITHOUT): TEST is a shell
# command that succeeds when the package is there already.
define apt_install
	@$(2) >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing $(1) ($(3)) ..."; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1)) >/dev/null 2>&1 \
				|| echo "warning: could not install $(1): $(4)"; \
		else \
			echo "warning: $(1) is not installed (sudo apt-get install $(1)): $(4)"; \
		fi; }
endef

# The grader's sandbox needs bubblewrap; without it grading still works, without the sandbox,
# and says so loudly.
sandbox:
	$(call apt_install,bubblewrap,command -v bwrap,the grader's sandbox,grading will run WITHOUT the sandbox)

# The tests of a PostgreSQL gradebook start a server of their own (its initdb and pg_ctl live
# in /usr/lib/postgresql/<version>/bin); without it those tests are skipped, and say so.
postgres:
	$(call apt_install,postgresql,ls /usr/lib/postgresql/*/bin/initdb,for the PostgreSQL gradebook tests,the PostgreSQL tests will be skipped)

# The browser tests (tests/browser/) drive the system's headless Chromium with Playwright;
# nothing downloads a browser. Without it those tests are skipped.
browser:
	$(call apt_install,chromium,command -v chromium,for the browser tests,the browser tests will be skipped)

demo: $(STAMP) sandbox
	$(BIN)/python -m course.demo
	$(BIN)/python -m autograder demo

# One BLAS thread per test worker: the workers already fill the cores, and oversubscribed
# OpenBLAS threads are slower than none on a loaded machine (tests/conftest.py pins them for
# every pytest run too). Each file goes whole to one worker (its module fixtures run once), in
# the order tests/suite_order.py gives them: the longest files first (FILE_SECONDS), so that
# the short ones fill in around them; --no-loadscope-reorder keeps that order.
test: export OPENBLAS_NUM_THREADS = 1
test: export OMP_NUM_THREADS = 1
test: $(STAMP) sandbox postgres browser
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder --nbval \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-current-env --durations=25 tests solutions

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "not slow" tests

# Lint: ruff's checks and its formatting on every Python folder, mypy on the library and the
# grader (its settings and files are in pyproject.toml's [tool.mypy]).
LINT_PATHS := course autograder tests benchmarks student

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy course autograder

# The sample class (autograder/sample_class/) and the student bundle (dist/student/) are built
# from the release: regenerate them too.
release: $(STAMP)
	for a in $(ASSIGNMENTS); do ($(NBGRADER) generate_assignment $$a --force --no-db --log-level=WARN) || exit 1; done
	$(BIN)/python autograder/sample_class/make_sample_class.py
	$(BIN)/python -m student.build --out dist/student

# What an instructor hands out: the release notebooks, the library compiled by Cython (a wheel
# for this platform and this Python) and a README for students. Not committed (.gitignore).
student: $(STAMP)
	$(BIN)/python -m student.build --out dist/student

# Jupyter refuses to run as root unless told to (a container, a CI machine).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ALLOW_ROOT)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_library.py

bench-grading: $(STAMP) sandbox
	$(BIN)/python benchmarks/bench_grading.py --students 16 --assignments 02_graphs 03_layers 07_mlp

clean:
	rm -rf $(VENV) out dist autograder/submitted autograder/autograded autograder/feedback autograder/gradebook.db .pytest_cache
