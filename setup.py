"""Builds the `nomq` Python package (python/nomq, docs/python.md) offline:

    pip install --no-build-isolation .        # Debian 12: add --break-system-packages, or use
                                              # a venv made with --system-site-packages

setuptools packages python/nomq; the extension nomq._nomq is built by this repository's CMake
(target nomq_python, python/CMakeLists.txt) with Debian's pybind11 and the Python running
pip, and copied into the package. NOMQ_CMAKE_BUILD_DIR=<dir> reuses an existing CMake build
directory (configured with the Python package on) instead of configuring a fresh one, as the
CTest test of this command does; CMAKE_ARGS adds arguments to a fresh configure.
"""

import glob
import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("NOMQ_CMAKE_BUILD_DIR") or os.path.join(
            os.path.abspath(self.build_temp), "cmake")
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, *generator,
                            "-DCMAKE_BUILD_TYPE=Release", "-DNOMQ_PYTHON=ON",
                            "-DNOMQ_BUILD_TESTS=OFF", "-DNOMQ_BUILD_CLI=OFF",
                            "-DNOMQ_BUILD_BENCH=OFF", "-DNOMQ_INSTALL=OFF",
                            f"-DPython_EXECUTABLE={sys.executable}",
                            *shlex.split(os.environ.get("CMAKE_ARGS", ""))], check=True)
        subprocess.run(["cmake", "--build", build_dir, "--target", "nomq_python",
                        "-j", str(os.cpu_count() or 1)], check=True)
        built = glob.glob(os.path.join(build_dir, "python", "nomq", "_nomq*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one nomq/_nomq*.so in {build_dir}/python, found {built}")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(built[0], dest)


setup(
    ext_modules=[Extension("nomq._nomq", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    # setuptools' own build tree under CMake's default build/ (ignored by git), not beside it.
    options={"build": {"build_base": os.path.join("build", "setuptools")}},
)
