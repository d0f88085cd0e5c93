"""Process-wide memory settings (datareach.memory): pyarrow told there is no pandas, in the
processes that are datareach's own; the C heap trimmed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_pyarrow_builds_arrays_without_loading_pandas_which_can_still_be_imported() -> None:
    out = _python(
        "import sys\n"
        "from datareach.memory import pyarrow_without_pandas, give_back\n"
        "assert pyarrow_without_pandas()\n"
        "import numpy as np, pyarrow as pa, pyarrow.compute as pc\n"
        "pa.array([1, 2]); pa.array(np.arange(3)); pa.table({'a': [1]}).to_pylist(); pc.sum(pa.array([1]))\n"
        "pa.array(np.arange(3), mask=np.zeros(3, bool)); pa.chunked_array([pa.array(['x'])]).to_numpy()\n"
        "print('pandas' in sys.modules)\n"
        "give_back()\n"
        "import pandas\n"
        "print(pyarrow_without_pandas())\n")
    assert out.split() == ["False", "False"]  # (not loaded; and once pandas is there, nothing to do)


def test_the_audit_command_runs_without_pandas(tmp_path: Path) -> None:
    """The command's own process (and so every parallel reader forked from it) never loads pandas
    through pyarrow: 55 MB and 0.2 s a process."""
    out = _python(
        "import sys\n"
        "from datareach.cli import main\n"
        f"sys.argv = ['datareach', 'audit', {str(EXAMPLE)!r}, '--format', 'json', '-o', "
        f"{str(tmp_path / 'r.json')!r}, '--no-progress']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('pandas' in sys.modules, 'pyarrow' in sys.modules)\n")
    assert out.split()[-2:] == ["False", "True"]
    assert (tmp_path / "r.json").stat().st_size > 1000
