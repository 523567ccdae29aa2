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

# Upstream YOLOv5 (PyPI `yolov5`) for tests/test_kd_yolov5_pypi.py, in a folder beside the env: it installs only
# with --no-deps and setuptools<81 (pkg_resources), which setup.py extras cannot express; the test appends the
# folder to sys.path of a child process, so the env's own packages (thop from ultralytics-thop) win.
YOLOV5_PKGS := $(VENV)/yolov5-pkgs
YOLOV5_PINS := yolov5==7.0.14 setuptools==80.10.2 seaborn==0.13.2 gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3

$(YOLOV5_PKGS)/.installed: $(STAMP)
	rm -rf $(YOLOV5_PKGS)
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --target $(YOLOV5_PKGS) $(YOLOV5_PINS)
	touch $@

test: $(STAMP) $(YOLOV5_PKGS)/.installed
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m mot_kd.demo --out runs/demo

# The KD benchmark (outside CI; ~2.5 h on 2 CPU cores with two runs side by side; resumable: re-run to continue).
bench: $(STAMP)
	$(PY) -m mot_kd.bench --preset cpu --tune --jobs 2 --out runs/bench

clean:
	rm -rf runs .pytest_cache
