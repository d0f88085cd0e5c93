"""Registrable domains ("eTLD+1") of host names, a whole column at a time.

``www.example.co.uk`` -> ``example.co.uk``, for every name of a pyarrow column: the enrich
stage's use of the public suffix list. The list itself, its cache and the answer for one name
(which names have none, and why the PRIVATE section is used) are in :mod:`datareach.kb.psl`;
:func:`psl_source` describes the list for a report's ``data_sources``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datareach.kb import psl

if TYPE_CHECKING:  # pyarrow and the geo module load only for the column functions
    from datareach.schema import DataSource

__all__ = ["load", "psl_source", "registrable_domains"]


def load() -> None:
    """Load the public suffix list now rather than at the first look-up."""
    psl.load()


def registrable_domains(hosts: Any) -> Any:
    """The registrable domain of each host name in a pyarrow string array (null where none).

    Same length and order as ``hosts``; accepts string, large_string, dictionary-of-string and
    chunked arrays. Each distinct name is looked up once (:func:`datareach.kb.psl.registrable_domain`).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from datareach.enrich.geo import _as_string_dictionary

    encoded = _as_string_dictionary(hosts)
    names = encoded.dictionary
    # Addresses have none, and are most of the distinct names when servers go unnamed: an IPv4
    # address (any name whose last label is digits) or an IPv6 one (two colons or more) is
    # answered here, without a Python string for it.
    lookup = pc.indices_nonzero(pc.invert(pc.or_(
        pc.match_substring_regex(names, r"(^|\.)[0-9]+\.?$"),
        pc.greater_equal(pc.count_substring(names, ":"), 2)))).to_numpy()
    domains = [psl.registrable_domain(h) for h in names.take(pa.array(lookup)).to_pylist()]
    values = pc.replace_with_mask(pa.nulls(len(names), pa.string()),
                                  pa.array(np.isin(np.arange(len(names)), lookup)), pa.array(domains, pa.string()))
    return values.take(encoded.indices)


def psl_source() -> DataSource:
    """Which public suffix list answered (:func:`datareach.kb.psl.list_source`)."""
    return psl.list_source()
