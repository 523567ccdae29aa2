# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export YOLO_OFFLINE := 1
export YOLO_VERBOSE := False
# one OpenBLAS thread for any numpy work in these targets (the tracker limits its own BLAS threads itself,
# so `python -m trackers.track` / `eval.mot17 --weights` are fast without this; docs/tracker.md)
export OPENBLAS_NUM_THREADS := 1

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m mot_kd.demo --out runs/demo

# The KD benchmark (outside CI; ~2.5 h on 2 CPU cores with two runs side by side; resumable: re-run to continue).
bench: $(STAMP)
	$(PY) -m mot_kd.bench --preset cpu --tune --jobs 2 --out runs/bench

clean:
	rm -rf runs .pytest_cache
