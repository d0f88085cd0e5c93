"""Live audits through mitmproxy.

* ``addon.py`` -- the mitmproxy addon (``mitmdump -s "$(python -m datareach.mitm --path)"``). It
  runs inside mitmproxy's own Python and imports nothing of datareach: it saves every flow to a
  flow file and hands each completed flow, as a record, to a datareach worker process.
* :mod:`datareach.mitm.worker` -- that worker (``python -m datareach.mitm worker``): finds each new
  destination's owner and reach and each request's personal data, prints one line per new
  destination and per new finding, and when the proxy stops writes the audit reports.
* ``mitm_bridge.py`` -- flows as records, shared by the addon and the flow-file reader
  (:mod:`datareach.sources.mitm`).
* :func:`mitmdump_command` -- how to start mitmdump (used by ``datareach proxy``).
* :func:`addon_path` -- what ``--path`` prints: a small launcher of the addon that names the
  Python it was printed by, so that the addon finds datareach from any shell (no activated
  virtualenv, datareach not on PATH).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The addon file to give ``mitmdump -s``.
ADDON_PATH = HERE / "addon.py"


def mitmdump_command(python: str) -> list[str]:
    """The command that starts mitmdump of the mitmproxy installed for ``python``."""
    python = os.path.abspath(python)  # not resolved: a virtualenv's python is a symlink
    script = Path(python).parent / "mitmdump"
    if script.is_file():
        return [str(script)]
    return [python, "-c", "import sys; from mitmproxy.tools.main import mitmdump; sys.exit(mitmdump())"]


LAUNCHER = '''"""datareach's mitmproxy addon, with the Python that runs datareach.

Written by `python -m datareach.mitm --path` (or `datareach proxy --addon-path`): it loads the
addon and tells it which Python printed this file's path.
"""

import importlib.util as _util

_spec = _util.spec_from_file_location("datareach_mitm_addon", {addon!r})
assert _spec is not None and _spec.loader is not None
_addon = _util.module_from_spec(_spec)
_spec.loader.exec_module(_addon)
_addon.EMBEDDED.update(python={python!r}, import_path={import_path!r})
addons = _addon.addons
'''


def addon_path() -> Path:
    """The file to give ``mitmdump -s``: a launcher of :data:`ADDON_PATH` that names this Python
    (and, when datareach is not installed in it, the directory it imports datareach from), kept
    in the cache directory, one per Python. :data:`ADDON_PATH` itself when it cannot be written."""
    from datareach.cache import cache_dir

    python = os.path.abspath(sys.executable)  # not resolved: a virtualenv's python is a symlink
    root = str(HERE.parent.parent)  # the directory holding the datareach package
    inside = os.path.commonpath([os.path.realpath(root), os.path.realpath(sys.prefix)]) == os.path.realpath(sys.prefix)
    text = LAUNCHER.format(python=python, addon=str(ADDON_PATH), import_path="" if inside else root)
    key = hashlib.sha256(f"{python}\0{ADDON_PATH}\0{root}".encode()).hexdigest()[:16]
    target = cache_dir() / "mitm-addon" / key / "datareach_addon.py"
    try:
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        return ADDON_PATH
    return target
