"""Builds the one compiled module, fastsync._core. Metadata lives in pyproject.toml.

FASTSYNC_LINETRACE=1 builds it with Cython line tracing, so coverage.sh can report
which .pyx lines the tests ran (slower; never for the shipped binary).
"""
import os
import shutil
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from Cython.Build import cythonize
except ImportError:
    sys.exit("fastsync: building needs Cython 3 (pip install 'Cython>=3'); "
             "pip installs it by itself unless build isolation is off")

LINETRACE = os.environ.get("FASTSYNC_LINETRACE") == "1"


class BuildExt(build_ext):
    """Fails with one sentence, not a compiler log, when the machine cannot compile."""

    def build_extensions(self):
        cc = getattr(self.compiler, "compiler_so", None) or ["cc"]
        if shutil.which(cc[0]) is None:
            sys.exit(f"fastsync: no C compiler ({cc[0]!r} not found). Install one "
                     "(Debian/Ubuntu: apt-get install gcc python3-dev) or use the "
                     "prebuilt dist/fastsync binary.")
        header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
        if not os.path.exists(header):
            sys.exit(f"fastsync: Python headers missing ({header}). Install them "
                     "(Debian/Ubuntu: apt-get install python3-dev).")
        super().build_extensions()


extension = Extension(
    "fastsync._core",
    ["fastsync/_core.pyx"],
    define_macros=[("CYTHON_TRACE_NOGIL", "1")] if LINETRACE else [],
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives={"language_level": "3", "linetrace": LINETRACE,
                             "embedsignature": True},
    ),
    cmdclass={"build_ext": BuildExt},
)
