"""Count the work a piece of code does, so that tests bound work rather than time.

A test that asserts "this took under 2 s" fails on a loaded machine and passes on a fast one
whatever the code does; a test that asserts "this called the decompressor for exactly 8 MiB of
output" or "this made one vectorised look-up per table, whatever the number of addresses" proves
the same bound on every machine. :class:`Calls` stands in for a function or method and counts
its calls; :class:`PatternCalls` does the same for a compiled regular expression.
"""

from __future__ import annotations

import re
import types
from collections import Counter
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Calls", "PatternCalls"]

_R = TypeVar("_R")


class Calls(Generic[_R]):
    """``fn``, counting its calls (and keeping their arguments when ``keep_args``).

    Works in place of a function (``monkeypatch.setattr(module, "name", Calls(module.name))``)
    and of a method (``monkeypatch.setattr(Class, "name", Calls(Class.name))``: it binds to the
    instance like a function does, and the instance is then the first of ``args``).
    """

    def __init__(self, fn: Callable[..., _R], *, keep_args: bool = False) -> None:
        self.fn = fn
        self.count = 0
        self.keep_args = keep_args
        self.args: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> _R:
        self.count += 1
        if self.keep_args:
            self.args.append((args, kwargs))
        return self.fn(*args, **kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return types.MethodType(self, instance)


class PatternCalls:
    """A compiled regular expression that counts the calls of each of its methods
    (``match``, ``search``, ``finditer``...), for a module-level pattern replaced in place."""

    def __init__(self, pattern: re.Pattern[Any]) -> None:
        self.pattern = pattern
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.pattern, name)
        if not callable(attr):
            return attr
        calls = self.calls

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return attr(*args, **kwargs)

        return counted
