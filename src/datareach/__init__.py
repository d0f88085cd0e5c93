"""datareach: where did the data go, who owns the place it went to, and which states can reach it.

The public API is :func:`audit`, which returns an :class:`Audit` with the same content as the
JSON report::

    import datareach
    result = datareach.audit(["examples/mobile-app-session.pcapng"])
    for d in result.destinations:
        print(d["host"], d["country"], d["owner"] and d["owner"]["ultimate_parent"]["name"])

    for h in datareach.explain(["api16-normal-c-useast1a.tiktokv.com"]):
        print([(r["jurisdiction"], r["basis"]) for r in h["reach"]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datareach import _core
from datareach._version import __version__

# DATAREACH_NATIVE=0: the Python sources of the mypyc-compiled packet core (datareach._core)
_core.install()

if TYPE_CHECKING:
    from datareach.api import Audit, audit
    from datareach.explainer import explain

__all__ = ["Audit", "__version__", "audit", "explain"]


def __getattr__(name: str) -> Any:
    # imported lazily so that `datareach --help` and the parsers do not pay for pyarrow
    if name in ("audit", "Audit"):
        from datareach import api

        return getattr(api, name)
    if name == "explain":
        from datareach import explainer

        return explainer.explain
    raise AttributeError(f"module 'datareach' has no attribute {name!r}")
