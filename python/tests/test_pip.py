"""pip install of ./python (offline, no build isolation), then the README
flow from the installed copy in a fresh interpreter."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent


def _has_pip() -> bool:
    r = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not _has_pip(), reason="pip is not installed for this Python")
def test_pip_install_and_readme_flow(tmp_path: pathlib.Path) -> None:
    # pip builds in place; work on a copy so the source tree stays clean.
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build",
                                                            ".pytest_cache"))
    target = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                        "--no-deps", "--target", str(target), str(src)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (target / "vsm" / "__init__.py").exists() and (target / "vsm" / "py.typed").exists()
    readme = (SRC / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    env = dict(env, PYTHONPATH=str(target), VSM_EXAMPLE_DIR=str(tmp_path / "run"))
    prog = "import vsm, sys; assert vsm.__file__.startswith(%r), vsm.__file__\n" % str(target)
    r = subprocess.run([sys.executable, "-c", prog + code], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "<disk" in r.stdout and "web" in r.stdout
    # Without VSM_LIBRARY the package loads libvsm.so.0 by its soname, as
    # after `meson install`; here the build directory stands in for libdir.
    lib = os.environ.get("VSM_LIBRARY")
    if lib:
        env2 = dict(env, LD_LIBRARY_PATH=os.path.dirname(os.path.abspath(lib)))
        env2.pop("VSM_LIBRARY")
        r = subprocess.run([sys.executable, "-c", "import vsm; print(vsm.library_version())"],
                           capture_output=True, text=True, env=env2, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.startswith("(0, ")
