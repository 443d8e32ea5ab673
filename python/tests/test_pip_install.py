"""`pip install --no-build-isolation .` from the repository root works offline, and the
installed package runs the original README's example.

The install goes into a fresh venv made with --system-site-packages (Debian's setuptools and
pybind11; PEP 668 keeps pip out of the system python). NOMQ_CMAKE_BUILD_DIR points setup.py at
this CTest build directory, so the extension that CMake built for the other tests is reused
instead of compiling the library a second time; setup.py, the package data and pip's
offline build are exercised as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import SOURCE_DIR, run
from seed_example import run_seed_example

BUILD_DIR = os.environ.get("NOMQ_BUILD_DIR", "")


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


@pytest.mark.skipif(not BUILD_DIR, reason="NOMQ_BUILD_DIR (the CMake build) not given")
def test_pip_install_then_the_seed_example(tmp_path):
    venv = tmp_path / "venv"
    # No pip of its own (ensurepip is slow): Debian's pip from the system site-packages installs
    # into the venv it runs in.
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(NOMQ_CMAKE_BUILD_DIR=BUILD_DIR, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    # pip builds in the source tree (setuptools writes under build/setuptools and python/*.egg-info,
    # both ignored by git).
    _run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps", SOURCE_DIR],
         env=env, cwd=str(tmp_path))
    # The installed package, not the build tree: no PYTHONPATH, run from elsewhere.
    where = _run([python, "-c", "import nomq, os; print(os.path.dirname(nomq.__file__))"],
                 env=env, cwd=str(tmp_path)).stdout.strip()
    assert where.startswith(str(venv)), where
    files = set(os.listdir(where))
    assert {"py.typed", "_nomq.pyi", "__init__.py", "_aio.py", "sync.py"} <= files, files
    assert any(f.startswith("_nomq") and f.endswith(".so") for f in files), files
    workdir = tmp_path / "run"
    workdir.mkdir()
    run(run_seed_example(str(workdir), python=python, env=env))
