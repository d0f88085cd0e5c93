"""Tests that count the work of a function by patching it (the work, not the time) cannot see into
compiled code: with a compiled core (setup.py, datareach._core) they run on the Python sources,
in a subprocess with DATAREACH_NATIVE=0. The code they count is the same on both paths
(tests/test_native.py compares the paths' reports byte for byte)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from datareach import _core


def compiled(module: ModuleType) -> pytest.MarkDecorator:
    """Skip a patching test in a process whose ``module`` is compiled (its twin runs it)."""
    return pytest.mark.skipif(_core.is_compiled(module), reason="run on the Python sources in a subprocess")


def run_on_sources(module: ModuleType, test_file: str, names: list[str], tmp_path: Path) -> None:
    """Run ``names`` of ``test_file`` on the Python sources (a subprocess with DATAREACH_NATIVE=0);
    skipped where ``module`` runs its sources already (the tests ran in this process)."""
    if not _core.is_compiled(module):
        pytest.skip("this process runs the Python sources: the tests ran here")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DATAREACH_NATIVE": "0", "DATAREACH_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                          "--basetemp", str(tmp_path / "t"), test_file, "-k", " or ".join(names)],
                         cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"{len(names)} passed" in run.stdout, run.stdout[-2000:]
