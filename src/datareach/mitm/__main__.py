"""``python -m datareach.mitm --path`` prints the addon's path; ``... worker`` is the addon's worker."""

from __future__ import annotations

import sys

from datareach.mitm import ADDON_PATH


def main(argv: list[str]) -> int:
    if argv and argv[0] == "worker":
        from datareach.mitm.worker import main as worker_main

        return worker_main(argv[1:])
    if argv in (["--path"], []):
        print(ADDON_PATH)
        return 0
    print("usage: python -m datareach.mitm --path    (the addon file for `mitmdump -s`)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
