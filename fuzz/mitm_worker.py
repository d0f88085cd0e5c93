"""Runs in mitmproxy's Python (not datareach's): reads flow files with the bridge, one per line.

Started by the ``mitm-file`` harness as ``MITM_PYTHON -I mitm_worker.py PATH/TO/mitm_bridge.py``.
Each line on standard input names a flow file; the answer is one JSON line on standard output:
``{"lines": [...]}`` (what ``mitm_bridge.read_file`` wrote) or ``{"crash": "traceback"}`` when
it raised. Standard library only (mitmproxy's Python has no datareach).
"""

import importlib.util
import io
import json
import resource
import sys
import traceback


def main() -> int:
    spec = importlib.util.spec_from_file_location("mitm_bridge", sys.argv[1])
    if spec is None or spec.loader is None:
        return 2
    bridge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bridge)
    # a hostile flow file must not take the machine's memory (mitmproxy reads what lengths say)
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    for line in sys.stdin:
        out = io.StringIO()
        answer: dict[str, object]
        try:
            bridge.read_file(line.rstrip("\n"), out)
            answer = {"lines": out.getvalue().splitlines()}
        except BaseException:  # report it: the harness decides
            answer = {"crash": traceback.format_exc()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
