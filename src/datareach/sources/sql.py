"""SQL dialects: what differs between DuckDB's SQL and Spark's.

The readers' SQL (:mod:`datareach.sources.zeek`, :mod:`datareach.sources.eve`) and the engines'
(:mod:`datareach.engine.logsql`) are written once, in the subset of SQL both engines speak; the
few places where they differ (lambdas, list functions, regular expressions, string literals,
ignoring nulls in a window) go through a :class:`Dialect`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DUCKDB", "SPARK", "Dialect"]


@dataclass(frozen=True)
class Dialect:
    """What differs between DuckDB's SQL and Spark's."""

    name: str

    def quote(self, text: str) -> str:
        """``text`` as a string literal (Spark's literals take backslash escapes; DuckDB's do not)."""
        if self.name == "duckdb":
            return "'" + text.replace("'", "''") + "'"
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def lam(self, var: str, body: str) -> str:
        return f"lambda {var}: {body}" if self.name == "duckdb" else f"{var} -> {body}"

    def list_filter(self, lst: str, var: str, cond: str) -> str:
        fn = "list_filter" if self.name == "duckdb" else "filter"
        return f"{fn}({lst}, {self.lam(var, cond)})"

    def split(self, text: str, sep: str) -> str:
        """``text`` cut at each ``sep`` (a literal string)."""
        if self.name == "duckdb":
            return f"string_split({text}, {self.quote(sep)})"
        import re

        return f"split({text}, {self.quote(re.escape(sep))}, -1)"

    def at(self, lst: str, i: str) -> str:
        """The ``i``-th element of a list, from 1; NULL past its end."""
        return f"list_extract({lst}, {i})" if self.name == "duckdb" else f"try_element_at({lst}, {i})"

    def empty_list(self) -> str:
        return "CAST([] AS VARCHAR[])" if self.name == "duckdb" else "CAST(array() AS ARRAY<STRING>)"

    def size(self, lst: str) -> str:
        return f"len({lst})" if self.name == "duckdb" else f"size({lst})"

    def explode_range(self, n: str) -> str:
        """A row per 1..n (n >= 1), in a SELECT list."""
        return f"unnest(range(1, {n} + 1))" if self.name == "duckdb" else f"explode(sequence(1, {n}))"

    def matches(self, text: str, pattern: str) -> str:
        """Whether ``text`` matches the regular expression ``pattern`` somewhere."""
        if self.name == "duckdb":
            return f"regexp_matches({text}, {self.quote(pattern)})"
        return f"({text} RLIKE {self.quote(pattern)})"

    def last_ignore_nulls(self, expr: str) -> str:
        return f"last_value({expr} IGNORE NULLS)" if self.name == "duckdb" else f"last({expr}, true)"

    def sorted_set(self, expr: str) -> str:
        """The distinct non-null values of a group, sorted (an aggregate)."""
        if self.name == "duckdb":
            return f"list_sort(list(DISTINCT {expr}) FILTER (WHERE {expr} IS NOT NULL))"
        return f"array_sort(collect_set({expr}))"

    def epoch(self, text: str) -> str:
        """Seconds since the epoch of a time given as a number, or as ISO 8601 text (microseconds
        divided by 1e6 in both engines: the same double, to the last bit)."""
        if self.name == "duckdb":
            return (f"coalesce(TRY_CAST({text} AS DOUBLE), "
                    f"epoch_us(TRY_CAST(regexp_replace({text}, '([+-]\\d\\d)(\\d\\d)$', '\\1:\\2') AS TIMESTAMPTZ))"
                    f" / 1e6)")
        return (f"coalesce(TRY_CAST({text} AS DOUBLE), "
                f"unix_micros(try_to_timestamp(regexp_replace({text}, '([+-][0-9][0-9])([0-9][0-9])$', '$1:$2')))"
                f" / 1e6)")

    def latest(self, value: str, order: str) -> str:
        """The ``value`` of the group's row with the greatest ``order`` (then the greatest value)."""
        if self.name == "duckdb":
            return f"arg_max({value}, ({order}, {value}))"
        return f"max_by({value}, struct({order}, {value}))"

    @property
    def spark(self) -> bool:
        return self.name == "spark"

    def q(self, ident: str) -> str:
        """A quoted identifier (field names that are SQL words: end, type, timestamp ...)."""
        return f"`{ident}`" if self.spark else f'"{ident}"'

    def lit(self, text: str) -> str:
        return self.quote(text)

    def first(self, list_expr: str) -> str:
        """The first element of a list, NULL if there is none."""
        return self.at(list_expr, "1")

    def list_of(self, expr: str) -> str:
        return f"array({expr})" if self.spark else f"list_value({expr})"

    def explode(self, list_expr: str) -> str:
        """A row per element of the list (none for NULL or []), in a SELECT list."""
        return f"explode({list_expr})" if self.spark else f"unnest({list_expr})"

    def filter_map(self, list_expr: str, var: str, where: str, value: str) -> str:
        """``[value for var in list if where]``."""
        if self.spark:
            return f"transform(filter({list_expr}, {var} -> {where}), {var} -> {value})"
        return f"list_transform(list_filter({list_expr}, lambda {var}: {where}), lambda {var}: {value})"

    def map(self, list_expr: str, var: str, value: str) -> str:
        if self.spark:
            return f"transform({list_expr}, {var} -> {value})"
        return f"list_transform({list_expr}, lambda {var}: {value})"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
