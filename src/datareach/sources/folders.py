"""Input folders that tools write: a capture and its key log side by side.

PiRogue's interception (``pirogue-intercept-single`` / ``-gated``) writes its output folder with
``traffic.pcap`` (the device's traffic) and ``sslkeylog.txt`` (the TLS secrets Frida read from the
apps), among other files (``socket_trace.json``, ``device.json``...). Given such a folder,
datareach audits the capture with the key log.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

#: The capture PiRogue writes, by the names it has had, and its key log.
PIROGUE_CAPTURES = ("traffic.pcap", "traffic.pcapng")
PIROGUE_KEYLOG = "sslkeylog.txt"


def pirogue_folder(path: str | os.PathLike[str]) -> tuple[Path, Path | None] | None:
    """(capture, key log or None) when ``path`` is a folder holding a PiRogue capture, else None."""
    p = Path(path)
    try:
        if not p.is_dir():
            return None
        for name in PIROGUE_CAPTURES:
            capture = p / name
            if capture.is_file():
                keys = p / PIROGUE_KEYLOG
                return capture, keys if keys.is_file() else None
    except OSError:
        return None
    return None


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[str | os.PathLike[str]], list[Path]]:
    """The inputs with each PiRogue folder replaced by its capture, and the key logs they hold."""
    out: list[str | os.PathLike[str]] = []
    keylogs: list[Path] = []
    for raw in inputs:
        found = pirogue_folder(raw)
        if found is None:
            out.append(raw)
            continue
        capture, keys = found
        out.append(capture)
        if keys is not None and keys not in keylogs:
            keylogs.append(keys)
    return out, keylogs
