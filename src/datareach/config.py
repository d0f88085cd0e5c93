"""Configuration files: defaults for ``datareach audit`` (and ``datareach config show``).

Two files are read, both optional; a value set in a later one wins, and the command line wins
over both:

1. the user's, ``$DATAREACH_CONFIG_HOME/config.toml`` or ``$XDG_CONFIG_HOME/datareach/config.toml``
   (default ``~/.config/datareach/config.toml``);
2. the project's, ``datareach.toml`` in the current directory or the nearest of its parents up to
   the root of the version-control checkout it is in (a directory holding ``.git``, ``.hg``,
   ``.svn`` or ``.jj``); outside a checkout, the current directory only (a ``datareach.toml``
   left in /tmp or $HOME never applies to every directory below it).

Keys (all optional)::

    profile = "profile.toml"                    # --profile
    policies = ["us-doj-bulk-data", "gate.toml"] # --policy (a preset name or a file)
    policy_path = ["policies"]                  # --policy-path
    format = "table"                            # --format: table, json, md, html or a plugin's
    geo_db = ["GeoLite2-City.mmdb"]             # --geo-db

Relative file names are taken from the directory of the file that names them. A list given on
the command line replaces the configured one (``--policy x`` means only x). A file that is too
large, not TOML, or has an unknown key or a value of the wrong type is a usage error: one line
naming the file (and the key), exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "Layer", "Merged", "add_config_parser", "apply_to_audit", "find_files", "load"]

PROJECT_FILE = "datareach.toml"
#: Larger configuration files are refused (a configuration is a few lines).
MAX_BYTES = 64 << 10
MAX_ITEMS = 64
MAX_STRING = 4096
VCS_MARKERS = (".git", ".hg", ".svn", ".jj")
#: key -> (kind, the ``audit`` option's dest)
KEYS: dict[str, tuple[str, str]] = {
    "profile": ("path", "profile"),
    "policies": ("policies", "policy"),
    "policy_path": ("paths", "policy_path"),
    "format": ("format", "format"),
    "geo_db": ("paths", "geo_db"),
}


class ConfigError(Exception):
    """A configuration file that cannot be used (a usage error: exit 2)."""


@dataclass
class Layer:
    """One configuration file's values, already checked and with paths made absolute."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Merged:
    """The merged configuration: each key's value and the file it came from."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def user_file() -> Path:
    from datareach.cache import user_dir

    return user_dir("DATAREACH_CONFIG_HOME", "XDG_CONFIG_HOME", (".config",)) / "config.toml"


def project_file(start: Path | None = None) -> Path | None:
    """The project's ``datareach.toml`` (see the module docstring), or None."""
    here = (start or Path.cwd()).absolute()
    for d in (here, *here.parents):
        candidate = d / PROJECT_FILE
        if candidate.is_file():
            return candidate
        if any((d / m).exists() for m in VCS_MARKERS):
            return None
        if d == here and not any((p / m).exists() for p in here.parents for m in VCS_MARKERS):
            return None  # outside a checkout: the current directory only
    return None


def find_files(start: Path | None = None) -> list[Path]:
    """The configuration files that exist, lowest precedence first."""
    files = [f for f in (user_file(),) if f.is_file()]
    project = project_file(start)
    if project is not None:
        files.append(project)
    return files


def _fail(path: Path, message: str) -> ConfigError:
    from datareach.report.terminal import safe

    return ConfigError(f"configuration file {safe(str(path))}: {message}")


def _string(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_STRING or "\x00" in value:
        raise _fail(path, f"{key} must be a non-empty string (at most {MAX_STRING} characters)")
    return value


def _strings(path: Path, key: str, value: object) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise _fail(path, f"{key} must be a string or a list of at most {MAX_ITEMS} strings")
    return [_string(path, key, v) for v in value]


def _resolve(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p))


def _is_file_name(value: str) -> bool:
    return "/" in value or os.sep in value or value.endswith(".toml")


def parse(path: Path) -> Layer:
    """Read and check one configuration file. Raises :class:`ConfigError`."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _fail(path, exc.strerror or str(exc)) from exc
    if len(data) > MAX_BYTES:
        raise _fail(path, f"larger than {MAX_BYTES // 1024} KiB")
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _fail(path, "not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML: {exc}") from exc
    base = path.parent.absolute()
    layer = Layer(path)
    for key, value in table.items():
        if key not in KEYS:
            raise _fail(path, f"unknown key {key!r} (known: {', '.join(KEYS)})")
        kind = KEYS[key][0]
        if kind == "path":
            layer.values[key] = _resolve(base, _string(path, key, value))
        elif kind == "paths":
            layer.values[key] = [_resolve(base, v) for v in _strings(path, key, value)]
        elif kind == "policies":
            layer.values[key] = [_resolve(base, v) if _is_file_name(v) else v for v in _strings(path, key, value)]
        else:  # format
            from datareach.report.formats import is_format, names

            name = _string(path, key, value)
            if not is_format(name):
                raise _fail(path, f"format {name!r} is not a report format (choose from {', '.join(names())})")
            layer.values[key] = name
    return layer


def load(start: Path | None = None) -> Merged:
    """The merged configuration of :func:`find_files`. Raises :class:`ConfigError`."""
    merged = Merged()
    for path in find_files(start):
        layer = parse(path)
        merged.files.append(path)
        for key, value in layer.values.items():
            merged.values[key] = value
            merged.sources[key] = str(path)
    return merged


def _audit_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = action.choices.get("audit")
            return found if isinstance(found, argparse.ArgumentParser) else None
    return None


def apply_to_audit(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` again with the configuration's values as the ``audit`` defaults: an option
    given on the command line wins, and a list option given there replaces the configured list.
    Raises :class:`ConfigError`."""
    merged = load()
    audit = _audit_parser(parser)
    if audit is None or not merged.values:
        return parser.parse_args(argv)
    defaults = {KEYS[k][1]: v for k, v in merged.values.items()}
    if isinstance(defaults.get("format"), str):  # (--format may be given several times: a list)
        defaults["format"] = [defaults["format"]]
    lists = {dest: v for dest, v in defaults.items() if isinstance(v, list)}
    for dest, v in lists.items():
        defaults[dest] = list(v)
    audit.set_defaults(**defaults)
    args = parser.parse_args(argv)
    for dest, configured in lists.items():
        got = getattr(args, dest)
        if got is not defaults[dest] and len(got) > len(configured):
            setattr(args, dest, got[len(configured):])  # argparse appended to the default: CLI wins
    return args


# ---------------------------------------------------------------------------------------------
# `datareach config show`


def add_config_parser(sub: Any) -> None:
    p = sub.add_parser("config", help="the configuration files (datareach.toml, the user's config.toml)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    show = csub.add_parser("show", help="the merged configuration, with the file each value comes from")
    show.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    show.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")


def run_config(args: argparse.Namespace) -> int:
    if getattr(args, "config_command", None) != "show":
        print("usage: datareach config show [--format table|json]", file=sys.stderr)
        return 2
    from datareach.report.terminal import safe

    try:
        merged = load()
    except ConfigError as exc:
        print(f"datareach: error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        import json

        out = {
            "files": {"user": str(user_file()), "project": str(project_file() or ""), "read": [str(f) for f in merged.files]},
            "values": {k: {"value": merged.values.get(k), "source": merged.sources.get(k, "default")} for k in KEYS},
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    project = project_file()
    print(f"user file:    {safe(str(user_file()))}{'' if user_file().is_file() else ' (none)'}")
    print(f"project file: {safe(str(project)) if project else '(none: no ' + PROJECT_FILE + ' here or up to the checkout root)'}")
    for key in KEYS:
        value = merged.values.get(key)
        shown = "(unset)" if value is None else (", ".join(value) if isinstance(value, list) else value)
        if value == []:
            shown = "(empty)"
        print(f"{key:12} = {safe(str(shown))}    [{safe(merged.sources.get(key, 'default'))}]")
    print("(the command line wins over every file; a list given there replaces the configured one)")
    return 0
