"""Folders given as inputs.

* A PiRogue output folder: PiRogue's interception (``pirogue-intercept-single`` / ``-gated``)
  writes ``traffic.pcap`` (the device's traffic) and ``sslkeylog.txt`` (the TLS secrets Frida read
  from the apps), among other files (``socket_trace.json``, ``device.json``...). Given such a
  folder, datareach audits the capture with the key log.
* Any other folder: the files below it, recursively, in sorted order, each its own input -- those
  whose content is a format datareach reads; the others are listed as skipped (hidden files and
  folders, whose names start with a dot, are not looked at). At most :data:`MAX_FOLDER_FILES`.
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


#: Files taken from one folder at most (the rest are skipped, and counted).
MAX_FOLDER_FILES = 100_000


def expand_inputs(inputs: Sequence[str | os.PathLike[str]],
                  skipped: list[str] | None = None) -> tuple[list[str | os.PathLike[str]], list[Path]]:
    """The inputs with each PiRogue folder replaced by its capture (and the key logs they hold
    returned), and each other folder by the readable files below it; the files of a folder that
    are not in a format datareach reads go to ``skipped``."""
    out: list[str | os.PathLike[str]] = []
    keylogs: list[Path] = []
    for raw in inputs:
        found = pirogue_folder(raw)
        if found is not None:
            capture, keys = found
            out.append(capture)
            if keys is not None and keys not in keylogs:
                keylogs.append(keys)
        elif _is_dir(raw):
            # (a folder with nothing readable stays an input: it is then reported as one)
            out.extend(_folder_files(Path(raw), skipped if skipped is not None else []) or [raw])
        else:
            out.append(raw)
    return out, keylogs


def _is_dir(path: str | os.PathLike[str]) -> bool:
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def _folder_files(folder: Path, skipped: list[str]) -> list[Path]:
    """The files below ``folder`` whose content a source reads, sorted by path."""
    from datareach.sources import detect_format

    files: list[Path] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if len(files) >= MAX_FOLDER_FILES:
                skipped.append(f"{path} (more than {MAX_FOLDER_FILES:,} files in {folder})")
                continue
            try:
                fmt = detect_format(path)
            except OSError:
                fmt = None
            if fmt is None:
                skipped.append(str(path))
            else:
                files.append(path)
    return sorted(files)
