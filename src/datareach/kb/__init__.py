"""The knowledge base: who owns which domains and networks, and which laws reach them.

* ``data/``: the curated records (TOML, under version control; schema in ``data/README.md``);
* :mod:`.load`: reads and checks those files (a malformed file fails with its file and line);
* :mod:`.index`: compiles them, with the user's imports, into cached look-up tables;
* :mod:`.store` and :mod:`.importers`: datasets the user imports (Tracker Radar, Disconnect,
  X-Ray owner lists, domain lists, .mmdb), kept in the user's data directory with provenance.

The resolve stage uses it: :mod:`datareach.enrich.ownership` computes owner and legal reach.
"""

from datareach.kb.index import KnowledgeBase, knowledge_base, reset
from datareach.kb.load import KBError

__all__ = ["KBError", "KnowledgeBase", "knowledge_base", "reset"]
