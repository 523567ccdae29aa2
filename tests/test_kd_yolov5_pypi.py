"""The real upstream YOLOv5 proof (tests/kd_yolov5_pypi_cases.py) runs in CI: `make test` installs the `yolov5`
PyPI package beside the env in .venv/yolov5-pkgs (it needs --no-deps and setuptools<81 for pkg_resources, which
setup.py extras cannot express), and the cases run in a child process with that folder LAST on sys.path, so the
env's own packages win and yolov5's import-time changes to process-wide state stay out of this process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PKGS = Path(sys.prefix) / "yolov5-pkgs"
CASES = Path(__file__).with_name("kd_yolov5_pypi_cases.py")

pytestmark = pytest.mark.skipif(not (PKGS / "yolov5").is_dir(), reason=(
    f"upstream YOLOv5 is not installed beside the env ({PKGS}); `make test` installs it (Makefile YOLOV5_PKGS)"))


def test_upstream_yolov5_cases_pass_in_a_child_process():
    code = (f"import sys; sys.path.append({str(PKGS)!r}); import pytest; "
            f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {str(CASES)!r}]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).parents[1])
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, f"{summary}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    assert "2 passed" in summary and "skipped" not in summary, summary  # the proof ran, all of it
