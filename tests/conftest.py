"""Fixtures the test modules share.

The builders behind them (capture files of real protocol bytes, .mmdb files, hostile report
documents, the Markdown checks, work counters) live in :mod:`datareach.testing`, which test
modules import; no test module imports another test module or this file.

* ``example_audit`` / ``example_policy_audit``: the bundled example capture through the real
  pipeline with the example profile (and judged against
  :data:`datareach.testing.reports.GATE_POLICY`); audited once per session and shared, so a
  test that changes the document works on a deep copy.
* ``kb_mini``: the directory of the tiny knowledge base whose every fact the tests can see.
* ``naming_pcap``: :func:`datareach.testing.builders.naming_capture` in the test's directory.
* ``count_calls``: replace a function or method by a :class:`~datareach.testing.counting.Calls`
  counter for the test.
* ``spark``: a Spark session in ``local[2]`` (:func:`datareach.engine.spark.spark_session`),
  started once per test process (~4 s) and stopped at the end.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Before the helpers are imported: their asserts then explain themselves as a test's do.
pytest.register_assert_rewrite("datareach.testing")

# Property tests explore new examples on every local run (that is how they find bugs); in CI
# (CI=true) they run a fixed derivation of examples, so that a submission's verdict does not
# depend on the luck of the draw. What a local run finds becomes a regression test.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

import datareach  # noqa: E402
from datareach.testing.builders import naming_capture  # noqa: E402
from datareach.testing.counting import Calls  # noqa: E402
from datareach.testing.reports import gate_policy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mobile-app-session.pcapng"
EXAMPLE_PROFILE = ROOT / "examples" / "profile.toml"
KB_MINI = Path(__file__).resolve().parent / "data" / "kb_mini"


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The compiled geo and public-suffix indexes go to a temporary directory, never ~/.cache."""
    old = os.environ.get("DATAREACH_CACHE_DIR")
    os.environ["DATAREACH_CACHE_DIR"] = str(tmp_path_factory.mktemp("datareach-cache"))
    yield
    if old is None:
        del os.environ["DATAREACH_CACHE_DIR"]
    else:
        os.environ["DATAREACH_CACHE_DIR"] = old


# ---------------------------------------------------------------------------------------------
# The example audit


@pytest.fixture(scope="session")
def example_audit() -> dict[str, Any]:
    """The audit document of the bundled example capture with the example profile, no policy.
    Shared by the whole session: a test that changes it works on a ``copy.deepcopy``."""
    return datareach.audit([EXAMPLE], profile=EXAMPLE_PROFILE).to_dict()


@pytest.fixture(scope="session")
def example_policy_audit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """:func:`example_audit` judged against the report tests' gate policy
    (:data:`datareach.testing.reports.GATE_POLICY`: the two presets and a deny rule the example
    breaks, with one exception). Shared by the whole session, like :func:`example_audit`."""
    policy = gate_policy(tmp_path_factory.mktemp("policy"))
    return datareach.audit([EXAMPLE], profile=EXAMPLE_PROFILE, policies=[policy]).to_dict()


# ---------------------------------------------------------------------------------------------
# Inputs


@pytest.fixture(scope="session")
def kb_mini() -> Path:
    """``tests/data/kb_mini``, a tiny knowledge base (read it, do not change it: copy it first)."""
    return KB_MINI


@pytest.fixture
def naming_pcap(tmp_path: Path) -> Path:
    """A capture whose connections are named by each kind of evidence (DNS, SNI, HTTP, none)."""
    return naming_capture(tmp_path)


# ---------------------------------------------------------------------------------------------
# Work counters


@pytest.fixture
def count_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Calls[Any]]:
    """``count_calls(target, "name", keep_args=False)``: ``target.name`` (a function of a module,
    or a method, static method or class method of a class) replaced, for this test, by a
    :class:`Calls` wrapper around it, which is returned. A method's calls keep the instance
    (a class method's, the class) as the first argument."""

    def replace(target: object, name: str, *, keep_args: bool = False) -> Calls[Any]:
        static = inspect.getattr_static(target, name)
        if isinstance(static, staticmethod | classmethod):  # the class's own, kept as such
            calls: Calls[Any] = Calls(static.__func__, keep_args=keep_args)
            monkeypatch.setattr(target, name, type(static)(calls))
        else:
            calls = Calls(getattr(target, name), keep_args=keep_args)
            monkeypatch.setattr(target, name, calls)
        return calls

    return replace


# ---------------------------------------------------------------------------------------------
# Spark


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The Spark engine's session in ``local[2]``, shared by the tests of one process."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("no Java runtime for Spark: `make test` installs one (apt-get install default-jre-headless)")
    from datareach.engine.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()
