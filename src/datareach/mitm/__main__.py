"""``python -m datareach.mitm --path`` prints the addon's path (a launcher that names this Python:
:func:`datareach.mitm.addon_path`); ``--install`` makes mitmproxy's environment (``make
mitmproxy``); ``worker`` is the addon's worker."""

from __future__ import annotations

import sys

USAGE = """usage: python -m datareach.mitm --path       the addon file for `mitmdump -s`
       python -m datareach.mitm --install    install mitmproxy into an environment of its own"""


def main(argv: list[str]) -> int:
    if argv and argv[0] == "worker":
        from datareach.mitm.worker import main as worker_main

        return worker_main(argv[1:])
    if argv in (["--path"], []):
        from datareach.mitm import addon_path

        print(addon_path())
        return 0
    if argv == ["--install"]:
        from datareach.sources.mitm import (
            MitmproxyNotFound,
            find_mitmproxy_python,
            install_mitmproxy,
            mitmproxy_env_dir,
        )

        try:
            python = find_mitmproxy_python(install=False)
            print(f"mitmproxy is already installed: {python}", file=sys.stderr)
            return 0
        except MitmproxyNotFound:
            pass
        try:
            install_mitmproxy()
        except MitmproxyNotFound as exc:
            print(f"datareach: error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 1
        print(f"mitmproxy's environment: {mitmproxy_env_dir()}", file=sys.stderr)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
