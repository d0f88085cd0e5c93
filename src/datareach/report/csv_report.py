"""CSV (``audit --format csv``): the destinations, one row each, and the findings, one row each,
for spreadsheets and data tools.

``-o report.csv`` writes the destinations to ``report.csv`` and the findings to
``report.findings.csv`` (always both, the second with its header only when nothing was found,
so that a CI job's file set does not depend on the result); to standard output, only the
destinations. A destination's ``service``, ``service_purpose`` and ``service_vendor`` name the SDK or
product it belongs to (``destinations[].service``), empty when none is known. List cells join their items with ``; ``; a finding's
``value`` is empty unless ``--reveal``.

A log audit (a document with ``organisation``) adds three tables, one file each next to the
destinations (:func:`extra_tables`): ``report.owners.csv`` (``organisation.owners``),
``report.clients.csv`` (``organisation.clients``: the top 100; clients.parquet has them all) and
``report.bulk.csv`` (``organisation.bulk``: the bulk-data counts, their verdicts, reasons and
bounds), their columns the records' declared fields (:class:`~datareach.schema.OwnerSummary`,
:class:`~datareach.schema.ClientSummary`, :class:`~datareach.schema.BulkCount`); its
destinations have a ``clients`` column (distinct client devices). The period the logs cover is
in the bulk rows' ``period_days`` (and the JSON document's ``organisation.period``).

Every cell that comes from the input is made inert: control, bidi and other non-printable
characters are written as escapes (:func:`~datareach.report.terminal.safe`), and a cell that a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) gets a leading ``'`` (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from datareach.report.terminal import safe
from datareach.report.wording import anycast_label, hosted_by
from datareach.schema.contract import document_fields
from datareach.schema.records import BulkCount, ClientSummary, OwnerSummary

DESTINATION_COLUMNS = ("id", "host", "app", "registrable_domain", "owner", "owner_country", "ultimate_parent",
                       "ultimate_parent_country", "hosted_by", "service", "service_purpose", "service_vendor",
                       "countries", "jurisdictions", "data_types", "bytes_out",
                       "bytes_in", "connections", "first_seen", "last_seen", "name_source", "ips",
                       "location_not_determinable")
FINDING_COLUMNS = ("id", "exchange", "host", "app", "data_type", "categories", "source", "location", "encoding",
                   "value_redacted", "value", "confidence", "encrypted_in_transit")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
#: The organisation's tables of a log audit: (file suffix, key in ``organisation``, columns).
ORGANISATION_TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("owners", "owners", tuple(document_fields(OwnerSummary))),
    ("clients", "clients", tuple(document_fields(ClientSummary))),
    ("bulk", "bulk", tuple(document_fields(BulkCount))),
)


def cell(value: object) -> str | int | float:
    """One value as an inert CSV cell (numbers stay numbers; lists are joined with ``; ``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    if text.startswith(_FORMULA):
        text = "'" + text
    return safe(text)


def _rows(columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([cell(row.get(c)) for c in columns])
    return out.getvalue()


def _countries(d: dict[str, Any]) -> list[Any]:
    """The servers' countries, without an anycast / CDN edge server's (the geo database's guess:
    ``location_not_determinable`` names those servers' operators instead)."""
    servers = [s for s in d.get("servers") or [] if isinstance(s, dict)]
    if not any(s.get("anycast") for s in servers):
        return list(d.get("countries") or [])
    return sorted({s["country"] for s in servers if s.get("country") and not s.get("anycast")})


def destination_row(d: dict[str, Any]) -> dict[str, Any]:
    owner = d.get("owner") or {}
    top = owner.get("ultimate_parent") or {}
    found = d.get("service")
    service: dict[str, Any] = found if isinstance(found, dict) else {}
    purposes = service.get("purposes")
    return {
        "id": d.get("id"), "host": d.get("host"), "app": d.get("app"), "registrable_domain": d.get("registrable_domain"),
        "owner": owner.get("name"), "owner_country": owner.get("hq_country"), "ultimate_parent": top.get("name"),
        "ultimate_parent_country": top.get("hq_country"), "hosted_by": hosted_by(d.get("hosting")),
        "service": service.get("name"),
        "service_purpose": purposes if isinstance(purposes, list) and purposes else service.get("purpose"),
        "service_vendor": service.get("vendor_name"),
        "countries": _countries(d),
        "jurisdictions": sorted({r["jurisdiction"] for r in d.get("reach") or [] if r.get("jurisdiction")}),
        "data_types": d.get("data_types") or [], "bytes_out": d.get("bytes_out"), "bytes_in": d.get("bytes_in"),
        "connections": d.get("connections"), "first_seen": d.get("first_seen"), "last_seen": d.get("last_seen"),
        "name_source": d.get("name_source"), "ips": d.get("ips") or [],
        "location_not_determinable": [x for x in (anycast_label(s.get("anycast")) for s in d.get("servers") or []
                                                  if isinstance(s, dict)) if x],
    }


def render_destinations_csv(doc: dict[str, Any]) -> str:
    """The destinations; a log audit's have a ``clients`` column too (distinct client devices)."""
    log = isinstance(doc.get("organisation"), dict)
    columns = (*DESTINATION_COLUMNS, "clients") if log else DESTINATION_COLUMNS
    return _rows(columns, ({**destination_row(d), "clients": d.get("clients")} if log else destination_row(d)
                           for d in doc.get("destinations", [])))


def render_organisation_csv(doc: dict[str, Any], table: str) -> str:
    """One of the organisation's tables (``owners``, ``clients``, ``bulk``) of a log audit; the
    header only when the document has none."""
    org = doc.get("organisation")
    for name, key, columns in ORGANISATION_TABLES:
        if name == table:
            rows = org.get(key) if isinstance(org, dict) else None
            return _rows(columns, (r for r in rows or [] if isinstance(r, dict)))
    raise KeyError(table)


def table_path(path: str, table: str) -> str:
    """Where a second table goes when the destinations go to ``path``: ``x.csv`` ->
    ``x.<table>.csv``."""
    stem = path[:-4] if path.lower().endswith(".csv") else path
    return f"{stem}.{table}.csv"


def extra_tables(doc: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """The files ``-o path`` writes besides the destinations: the findings always; a log
    audit's owners, clients and bulk counts too. (path, text) each."""
    out = [(findings_path(path), render_findings_csv(doc))]
    if isinstance(doc.get("organisation"), dict):
        out += [(table_path(path, name), render_organisation_csv(doc, name)) for name, _, _ in ORGANISATION_TABLES]
    return out


def render_findings_csv(doc: dict[str, Any]) -> str:
    return _rows(FINDING_COLUMNS, doc.get("findings", []))


def findings_path(path: str) -> str:
    """Where the findings go when the destinations go to ``path``: ``x.csv`` -> ``x.findings.csv``
    (``x`` -> ``x.findings.csv``)."""
    return table_path(path, "findings")
