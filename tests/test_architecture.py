"""The package's layering: stages import only from their own or earlier stages, and no cycles.

Every module under ``src/datareach`` belongs to one pipeline stage, and each stage has a rank
(:data:`RANKS`). A module may import only modules of its own rank or an earlier one; and no two
modules may import each other, directly or through others (a cycle of modules). The import
graph is read from the source with :mod:`ast`, without importing anything.

What counts as an import of a module (an edge of the graph):

* every ``import`` and ``from ... import`` statement anywhere in the module: at the top, inside
  functions and methods (lazy imports), inside ``try`` blocks, and inside
  ``if TYPE_CHECKING:`` blocks. Imports made for the type checker only count too: the rule is
  about which stage knows about which, and a type annotation that names a later stage's type
  is as much a dependency on that stage as a call is (and it is one edit away from becoming a
  runtime import);
* ``importlib.import_module("datareach.x")`` / ``__import__("datareach.x")`` with a literal name.

Which module an import names:

* ``import datareach.a.b`` and ``from datareach.a.b import name`` import ``datareach.a.b``;
* ``from datareach.a import b`` imports ``datareach.a.b`` when ``b`` is a submodule (or
  subpackage), and ``datareach.a`` (its ``__init__``) when ``b`` is any other name. So
  ``from datareach import __version__`` is an import of the package ``datareach`` (the public
  API, rank 9), while ``from datareach import cache`` is an import of ``datareach.cache``;
* relative imports are resolved against the importing module's package;
* the packages above the module that Python initialises on the way (``datareach/__init__.py``
  before ``datareach.cache``) are not counted: they are the import system's doing, not the
  module's choice, and counting them would make every module depend on the public API.

A package directory without ``__init__.py`` (a namespace package) is a module of the graph too,
with no imports of its own. Loading a file by path (``importlib.util.spec_from_file_location``,
as the mitmproxy addon does for the stdlib-only bridge) is not an import of a module and is not
seen. Every module must have a rank: a new package or top-level module fails the test until it
is placed in :data:`RANKS`.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = "datareach"
SRC = Path(__file__).resolve().parents[1] / "src"

#: Pipeline stages. A key names a module or a package (and then covers everything in it, unless a
#: longer key says otherwise); the top-level package ``datareach`` itself covers only its
#: ``__init__``.
RANKS: dict[str, int] = {
    # 0 base: records and helpers every stage may use
    "datareach.schema": 0,
    "datareach.timestamps": 0,
    "datareach.cache": 0,
    "datareach.files": 0,
    "datareach._version": 0,
    # which packet core runs (the mypyc-compiled modules or their sources): stdlib only
    "datareach._core": 0,
    # process-wide memory settings (pyarrow without pandas, the C heap trimmed): stdlib only
    "datareach.memory": 0,
    # 1 dissect: sans-IO protocol parsers
    "datareach.dissect": 1,
    # 2 sources: one module per input format
    "datareach.sources": 2,
    # 3 kb: the knowledge base and the public suffix list
    "datareach.kb": 3,
    # 4 enrich: naming, geo, domains, ownership, destinations
    "datareach.enrich": 4,
    # 5 detect: personal data in requests
    "datareach.detect": 5,
    # 6 assess: policies and verdicts
    "datareach.assess": 6,
    # 7 report: renderers
    "datareach.report": 7,
    # 8 engine: runs the stages
    "datareach.engine": 8,
    # 9 api: the public interface
    "datareach": 9,
    "datareach.api": 9,
    "datareach.explainer": 9,
    "datareach.plugins": 9,
    # 10 frontends
    "datareach.cli": 10,
    "datareach.config": 10,
    "datareach.completion": 10,
    "datareach.__main__": 10,
    "datareach.mitm": 10,
    "datareach.testing": 10,
}

STAGES = {0: "base", 1: "dissect", 2: "sources", 3: "kb", 4: "enrich", 5: "detect", 6: "assess", 7: "report",
          8: "engine", 9: "api", 10: "frontends"}


@dataclass(frozen=True)
class Source:
    """One module's source: ``path`` as shown in messages, ``text`` the Python source."""

    path: str
    text: str
    package: bool  # an __init__.py (or a namespace package directory)


@dataclass(frozen=True)
class Import:
    """``source`` imports ``target`` at ``path``:``line``."""

    source: str
    target: str
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


# ---------------------------------------------------------------------------------------------
# Reading the graph


def read_package(src: Path = SRC, root: str = ROOT) -> dict[str, Source]:
    """Every module and package under ``src/root`` by dotted name."""
    out: dict[str, Source] = {}
    base = src / root
    for file in sorted(base.rglob("*.py")):
        rel = file.relative_to(src)
        parts = list(rel.with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts.pop()
        shown = str(Path("src") / rel)
        out[".".join(parts)] = Source(shown, file.read_text(encoding="utf-8"), package)
        # the directories above it are packages, with or without an __init__.py
        for i in range(1, len(rel.parts)):
            name = ".".join(rel.parts[:i])
            if name not in out and not (src / Path(*rel.parts[:i]) / "__init__.py").is_file():
                out[name] = Source(str(Path("src", *rel.parts[:i])) + "/", "", True)
    return out


def _first_party(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def imports_of(module: str, modules: Mapping[str, Source], root: str = ROOT) -> list[Import]:
    """The first-party imports in ``module``'s source (see the module docstring)."""
    src = modules[module]
    if not src.text:
        return []
    tree = ast.parse(src.text, filename=src.path)
    package = module if src.package else module.rpartition(".")[0]
    out: list[Import] = []

    def add(target: str, node: ast.AST) -> None:
        if not _first_party(target, root):
            return
        out.append(Import(module, target, src.path, getattr(node, "lineno", 0)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if alias.name != "*" and sub in modules else base, node)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant) \
                    and isinstance(arg.value, str):
                add(arg.value, node)
    return sorted(out, key=lambda e: (e.line, e.target))


def import_graph(modules: Mapping[str, Source], root: str = ROOT) -> list[Import]:
    return [imp for m in sorted(modules) for imp in imports_of(m, modules, root)]


# ---------------------------------------------------------------------------------------------
# The checks


def rank_of(module: str, ranks: Mapping[str, int] = RANKS, root: str = ROOT) -> int | None:
    if module == root:
        return ranks.get(root)
    parts = module.split(".")
    while len(parts) > 1:
        hit = ranks.get(".".join(parts))
        if hit is not None:
            return hit
        parts.pop()
    return None


def missing(edges: Iterable[Import], modules: Mapping[str, Source]) -> list[str]:
    """``file:line: a imports b, which does not exist`` (a stale import, e.g. after a move)."""
    return [f"{e.where}: {e.source} imports {e.target}, which does not exist" for e in edges
            if e.target not in modules]


def unranked(modules: Iterable[str], ranks: Mapping[str, int] = RANKS, root: str = ROOT) -> list[str]:
    return sorted(m for m in modules if rank_of(m, ranks, root) is None)


def back_imports(edges: Iterable[Import], ranks: Mapping[str, int] = RANKS, root: str = ROOT) -> list[str]:
    """``file:line: a (rank) imports b (later rank)`` for every import of a later stage."""
    out = []
    for e in edges:
        rs, rt = rank_of(e.source, ranks, root), rank_of(e.target, ranks, root)
        if rs is None or rt is None:
            continue  # reported by unranked()
        if rt > rs:
            out.append(f"{e.where}: {e.source} ({STAGES.get(rs, rs)}, rank {rs}) imports {e.target} "
                       f"({STAGES.get(rt, rt)}, rank {rt})")
    return out


def strongly_connected(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (each sorted; the components in a stable order)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(out)


def _cycle_through(start: str, component: set[str], edges: Mapping[str, set[str]]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in component:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is on no cycle")  # pragma: no cover


def cycles(edges: Iterable[Import]) -> list[str]:
    """One line per import cycle: ``a -> b (file:line) -> a (file:line)``, and the other modules
    of its strongly connected component when there are more."""
    all_edges = list(edges)
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for e in all_edges:
        graph.setdefault(e.source, set()).add(e.target)
        where.setdefault((e.source, e.target), e.where)
    nodes = set(graph) | {t for ts in graph.values() for t in ts}
    out = []
    for component in strongly_connected(nodes, graph):
        members = set(component)
        if len(component) == 1 and component[0] not in graph.get(component[0], set()):
            continue
        path = _cycle_through(component[0], members, graph)
        text = path[0] + "".join(f" -> {b} ({where[(a, b)]})" for a, b in itertools.pairwise(path))
        rest = sorted(members - set(path))
        if rest:
            text += f"; the same cycle of imports also takes in {', '.join(rest)}"
        out.append(text)
    return out


# ---------------------------------------------------------------------------------------------
# The package


@pytest.fixture(scope="module")
def package() -> dict[str, Source]:
    return read_package()


@pytest.fixture(scope="module")
def graph(package: dict[str, Source]) -> list[Import]:
    return import_graph(package)


def test_the_graph_is_read(package: dict[str, Source], graph: list[Import]) -> None:
    # a wrong path or a broken reader would otherwise pass every check below with nothing to check
    assert len(package) > 50
    assert {"datareach", "datareach.cli", "datareach.schema", "datareach.report.markdown"} <= set(package)
    edges = {(e.source, e.target) for e in graph}
    assert len(edges) > 100
    assert ("datareach.enrich.domains", "datareach.kb.psl") in edges  # from a import b (b a module)
    assert ("datareach.report.diff", "datareach.report.markdown") in edges
    assert ("datareach.kb.index", "datareach.kb.psl") in edges  # inside a function


def test_every_module_has_a_stage(package: dict[str, Source]) -> None:
    missing = unranked(package)
    assert not missing, ("modules with no stage (add them, or their package, to RANKS in "
                         "tests/test_architecture.py):\n  " + "\n  ".join(missing))


def test_imports_name_existing_modules(package: dict[str, Source], graph: list[Import]) -> None:
    found = missing(graph, package)
    assert not found, "\n  ".join(["imports of modules that do not exist:", *found])


def test_no_stage_imports_a_later_stage(graph: list[Import]) -> None:
    found = back_imports(graph)
    assert not found, "imports of a later stage:\n  " + "\n  ".join(found)


def test_no_import_cycles(graph: list[Import]) -> None:
    found = cycles(graph)
    assert not found, "import cycles:\n  " + "\n  ".join(found)


# ---------------------------------------------------------------------------------------------
# The checker itself, on a package that breaks every rule

_SYNTHETIC = {
    "pkg/__init__.py": "from pkg import low\n",
    "pkg/low/__init__.py": "",
    "pkg/low/a.py": "from pkg.low import b\n",
    "pkg/low/b.py": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.high.c import Thing\n"
        "def f():\n"
        "    from . import a\n"
        "    return a\n"
    ),
    "pkg/high/__init__.py": "",
    "pkg/high/c.py": "import pkg.low.a\nfrom ..low.b import f\nimport os\n",
    "pkg/high/d.py": "import importlib\nm = importlib.import_module('pkg.high.c')\nfrom pkg import __version__\n",
    "pkg/loner.py": "from pkg.nowhere import x\n",
}
_SYNTHETIC_RANKS = {"pkg": 9, "pkg.low": 1, "pkg.high": 2}


def _synthetic(tmp_path: Path) -> dict[str, Source]:
    for rel, text in _SYNTHETIC.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return read_package(tmp_path, "pkg")


def test_the_checker_reads_every_kind_of_import(tmp_path: Path) -> None:
    modules = _synthetic(tmp_path)
    edges = {(e.source, e.target, e.line) for e in import_graph(modules, "pkg")}
    assert edges == {
        ("pkg", "pkg.low", 1),  # from pkg import <subpackage>
        ("pkg.low.a", "pkg.low.b", 1),  # from pkg.low import <submodule>
        ("pkg.low.b", "pkg.high.c", 3),  # under TYPE_CHECKING
        ("pkg.low.b", "pkg.low.a", 5),  # relative, inside a function
        ("pkg.high.c", "pkg.low.a", 1),
        ("pkg.high.c", "pkg.low.b", 2),  # two levels up
        ("pkg.high.d", "pkg.high.c", 2),  # importlib.import_module
        ("pkg.high.d", "pkg", 3),  # a name of the package: its __init__
        ("pkg.loner", "pkg.nowhere", 1),  # a module that does not exist
    }


def test_the_checker_finds_cycles_and_later_stages(tmp_path: Path) -> None:
    modules = _synthetic(tmp_path)
    edges = import_graph(modules, "pkg")
    assert unranked(modules, _SYNTHETIC_RANKS, "pkg") == ["pkg.loner"]
    loner = Path("src/pkg/loner.py")
    assert missing(edges, modules) == [f"{loner}:1: pkg.loner imports pkg.nowhere, which does not exist"]
    assert back_imports(edges, _SYNTHETIC_RANKS, "pkg") == [
        f"{Path('src/pkg/high/d.py')}:3: pkg.high.d (sources, rank 2) imports pkg (api, rank 9)",
        f"{Path('src/pkg/low/b.py')}:3: pkg.low.b (dissect, rank 1) imports pkg.high.c (sources, rank 2)",
    ]
    file_a, file_b, file_c = (str(Path(f"src/pkg/{p}.py")) for p in ("low/a", "low/b", "high/c"))
    assert cycles(edges) == [f"pkg.high.c -> pkg.low.b ({file_c}:2) -> pkg.high.c ({file_b}:3); "
                             "the same cycle of imports also takes in pkg.low.a"]
    # without the type-only import, a <-> b is still a cycle (through a lazy relative import)
    assert cycles(e for e in edges if (e.source, e.line) != ("pkg.low.b", 3)) == [
        f"pkg.low.a -> pkg.low.b ({file_a}:1) -> pkg.low.a ({file_b}:5)"]


def test_the_checker_passes_a_clean_graph() -> None:
    edges = [Import("p.a", "p.b", "a.py", 1), Import("p.b", "p.c", "b.py", 1), Import("p.a", "p.c", "a.py", 2)]
    assert cycles(edges) == []
    assert back_imports(edges, {"p.a": 2, "p.b": 1, "p.c": 0}, "p") == []
    assert cycles([Import("p.a", "p.a", "a.py", 7)]) == ["p.a -> p.a (a.py:7)"]


# -- records declared once -------------------------------------------------------------------------


def _layouts(tree: ast.AST) -> Iterable[tuple[int, set[str]]]:
    """(line, names) of every class body's annotated fields and every dict literal's string keys."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            names = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
            yield node.lineno, names
        elif isinstance(node, ast.Dict):
            yield node.lineno, {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


def _layout_copies(records: Mapping[str, set[str]], files: Iterable[tuple[str, str]]) -> list[str]:
    """Places outside the declarations that spell out most of a record's fields again."""
    found = []
    for path, source in files:
        for line, names in _layouts(ast.parse(source)):
            for record, wanted in records.items():
                if len(names & wanted) >= max(6, int(0.6 * len(wanted))):
                    found.append(f"{path}:{line}: {record} ({len(names & wanted)} of its {len(wanted)} fields)")
    return found


def test_the_connection_exchange_and_destination_layouts_are_declared_once() -> None:
    from datareach.schema import Connection, Destination, Exchange, fields

    records = {cls.__name__: set(fields(cls)) for cls in (Connection, Exchange, Destination)}
    declarations = SRC / "datareach" / "schema" / "records.py"
    files = [(str(p.relative_to(SRC)), p.read_text(encoding="utf-8"))
             for p in sorted((SRC / "datareach").rglob("*.py")) if p != declarations]
    assert _layout_copies(records, files) == []
    # and the check sees a copy when there is one: the declarations themselves, and a dict
    assert {f.split(":")[0] for f in _layout_copies(records, [("records.py", declarations.read_text())])} == {
        "records.py"}
    copy = "row = {" + ", ".join(f"{n!r}: None" for n in sorted(records["Exchange"])) + "}"
    assert _layout_copies(records, [("copy.py", copy)]) == [
        f"copy.py:1: Exchange ({len(records['Exchange'])} of its {len(records['Exchange'])} fields)"]
