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
"""

from __future__ import annotations

import os
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
