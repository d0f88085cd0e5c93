"""Files the user names: what they are, and the bounded reading of configuration files.

Inputs and configuration files must be regular files. A directory, a character or block device,
a FIFO or a socket is refused before anything is read from it (:func:`check_regular`,
:func:`open_regular`): opening a FIFO blocks, a stream cannot be read twice, and ``/dev/zero``
never ends.

Policies and profiles are read with bounds (:func:`read_config`, :func:`parse_toml`): a regular
file of at most :data:`CONFIG_MAX_BYTES`, TOML nested at most :data:`TOML_MAX_DEPTH` deep,
numbers of at most :data:`TOML_MAX_DIGITS` digits.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from typing import Any

#: Policy and profile files are read only up to this size (1 MiB): a bigger file is refused.
CONFIG_MAX_BYTES = 1 << 20
#: How deep a policy or profile may nest arrays, inline tables, table headers and dotted keys.
TOML_MAX_DEPTH = 32
#: The most digits a number in a policy or profile may have (Python refuses integers of more
#: than 4,300 digits; none of these files needs more than a few dozen).
TOML_MAX_DIGITS = 100


class ConfigFileError(ValueError):
    """A policy or profile file that cannot be read or parsed; the message names the file and
    the place. ``missing`` is true when the file does not exist."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words (``a directory``, ``a FIFO (named pipe)``...)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def not_regular(mode: int, what: str = "capture") -> str | None:
    """Why a file of this ``st_mode`` cannot be an input (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"is a directory; give the {what} files in it"
    return (f"is not a regular file but {file_kind(mode)}; datareach reads {what} files "
            "(save the data to a file first)")


def check_regular(path: str | os.PathLike[str], what: str = "capture") -> None:
    """Raise :class:`OSError` (``strerror`` says why) unless ``path`` is a regular file. Never
    opens the file: opening a FIFO blocks, and opening a device may do something."""
    problem = not_regular(os.stat(path).st_mode, what)
    if problem is not None:
        code = errno.EISDIR if problem.startswith("is a directory") else errno.EINVAL
        raise OSError(code, problem, str(path))


def open_regular(path: str | os.PathLike[str], what: str = "capture") -> Any:
    """``path`` opened for reading in binary mode, if it is a regular file (else :class:`OSError`
    saying what it is). Checked before opening and again on the opened file."""
    check_regular(path, what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        problem = not_regular(os.fstat(fd).st_mode, what)
        if problem is not None:  # replaced since it was checked
            raise OSError(errno.EINVAL, problem, str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise



def read_config(path: str | os.PathLike[str], where: str, what: str = "policy and profile",
                limit: int = CONFIG_MAX_BYTES) -> bytes:
    """The bytes of a configuration file (``what``: "policy", "profile"): a regular file of at
    most ``limit`` bytes (checked on its size, then by reading at most ``limit + 1`` bytes: files
    in /proc say they are empty). Raises :class:`ConfigFileError` starting with ``where``."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            hint = f"; give one {what} file in it (a .toml file)" if stat.S_ISDIR(mode) else ""
            raise ConfigFileError(f"{where}: is {file_kind(mode)}, not a {what} file{hint}")
        with open_regular(path, what) as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise ConfigFileError(f"{where}: the file is {size:,} bytes; {what} files are limited to "
                                      f"{_size(limit)}")
            raw: bytes = f.read(limit + 1)
    except ConfigFileError:
        raise
    except FileNotFoundError:
        raise ConfigFileError(f"{where}: no such file", missing=True) from None
    except OSError as e:
        raise ConfigFileError(f"{where}: cannot read the file: {e.strerror or e}") from None
    except ValueError as e:  # a NUL byte in the name
        raise ConfigFileError(f"{where}: cannot read the file: {e}") from None
    if len(raw) > limit:
        raise ConfigFileError(f"{where}: the file is larger than {_size(limit)}, the limit for {what} files")
    return raw


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n:,} bytes"


def parse_toml(raw: bytes, where: str, what: str = "a profile or policy") -> dict[str, Any]:
    """``raw`` parsed as TOML, after checking that it is UTF-8 text within the bounds
    (:func:`toml_problem`). Raises :class:`ConfigFileError` starting with ``where``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigFileError(f"{where}: not a text file (byte {e.start} is not UTF-8): {what} is a TOML "
                              "file") from None
    problem = toml_problem(text)
    if problem is not None:
        raise ConfigFileError(f"{where}: {problem}")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigFileError(f"{where}: not a valid TOML file: {e}") from None
    except RecursionError:
        raise ConfigFileError(f"{where}: not a valid TOML file: nested too deeply") from None
    except ValueError as e:  # an integer Python will not convert
        raise ConfigFileError(f"{where}: not a valid TOML file: {e}") from None


_INTERESTING = re.compile(r"[\[\]{}\n#\"'=,.0-9]")
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_ML_BASIC = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""', re.S)
_LITERAL = re.compile(r"'[^'\n]*'")
_DIGITS = re.compile(r"[0-9_]*")


def toml_problem(text: str, max_depth: int = TOML_MAX_DEPTH, max_digits: int = TOML_MAX_DIGITS) -> str | None:
    """What makes ``text`` too costly to parse, found by a scan in linear time before the parser
    runs (it recurses once per level of nesting): nesting deeper than ``max_depth`` (arrays,
    inline tables, table headers and the parts of dotted keys counted together), or a number of
    more than ``max_digits`` digits. Strings and comments are skipped; None when neither is
    found (the parser reports every other mistake)."""
    depth = dots = 0
    line = 1
    pos, n = 0, len(text)
    while True:
        m = _INTERESTING.search(text, pos)
        if m is None:
            return None
        i = m.start()
        c = text[i]
        pos = i + 1
        if c == "\n":
            line += 1
            dots = 0
        elif c == "#":
            j = text.find("\n", i)
            pos = n if j < 0 else j
        elif c in "[{":
            depth += 1
            dots = 0
            if depth > max_depth:
                return f"line {line}: nested more than {max_depth} levels deep"
        elif c in "]}":
            depth = max(depth - 1, 0)
            dots = 0
        elif c in "=,":
            dots = 0
        elif c == ".":
            dots += 1
            if depth + dots > max_depth:
                return f"line {line}: nested more than {max_depth} levels deep (a dotted key of too many parts)"
        elif c in "0123456789":
            d = _DIGITS.match(text, i)
            assert d is not None
            run = d.group()
            if len(run) - run.count("_") > max_digits:
                return f"line {line}: a number of more than {max_digits} digits"
            pos = d.end()
        else:  # a string
            quote3 = c * 3
            if text.startswith(quote3, i):
                if c == '"':
                    s = _ML_BASIC.match(text, i)
                    end = s.end() if s else -1
                else:
                    j = text.find(quote3, i + 3)
                    end = j + 3 if j >= 0 else -1
                if end < 0:
                    return None  # unterminated: the parser says where
                for _ in range(2):  # a quote or two ending the content, right before the closing ones
                    if end < n and text[end] == c:
                        end += 1
            else:
                s = (_BASIC if c == '"' else _LITERAL).match(text, i)
                if s is None:
                    return None
                end = s.end()
            line += text.count("\n", i, end)
            pos = end
