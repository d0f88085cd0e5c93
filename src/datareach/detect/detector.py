"""One request in, findings out: decoding, known values, patterns and categories together."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from datareach.detect.categories import categories
from datareach.detect.decode import DecodeMemo, decode_exchange
from datareach.detect.known import Form, profile_forms
from datareach.detect.matcher import Matcher
from datareach.detect.patterns import detect_fingerprint, detect_patterns
from datareach.detect.prefilter import Prefilter, RequestGate
from datareach.detect.profile import Profile, redact
from datareach.detect.types import Finding, Layer, Limits, canonical_data_type
from datareach.schema import Exchange

#: Pattern data types and the profile key they find the same thing as (a profile match of the
#: same value in the same place makes the pattern finding redundant).
SAME_AS_PROFILE = {
    "precise_location": "location", "mac_address": "mac", "wifi_bssid": "mac",
    "advertising_id": "advertising_id", "android_id": "android_id", "email": "email",
    "phone": "phone", "imei": "imei",
}


@dataclass(slots=True)
class _Candidate:
    family: str
    path: tuple[str, ...]  # the layer's encoding chain
    finding: Finding


_LAT_ALONE = re.compile(r'(?<![a-z])(lat|latitude)"?\s*[:=]')
_LNG_ALONE = re.compile(r'(?<![a-z])(lng|lon|longitude)"?\s*[:=]')


def _both_coordinates(forms: list[Form]) -> bool:
    """Whether location matches show the user's position, not a coincidence in one coordinate.

    A pair form (``lat,lng``) is enough; forms of a single keyed coordinate (``"lat":X``) count
    only when the other coordinate matched too.
    """
    lat = lng = False
    for form in forms:
        t = form.transform
        is_lat, is_lng = bool(_LAT_ALONE.search(t)), bool(_LNG_ALONE.search(t))
        if not is_lat and not is_lng:
            return True  # a pair
        lat |= is_lat
        lng |= is_lng
    return lat and lng


def _is_ancestor(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether layer path ``a`` contains layer path ``b`` (b was decoded out of a)."""
    if len(a) < len(b) and b[: len(a)] == a:
        return True
    # the raw query string holds every query parameter
    return a == ("query",) and bool(b) and b[0].startswith("query ")


# -- the detectors' interface (entry-point group ``datareach.detectors``) -------------------------


@dataclass(frozen=True, slots=True)
class DetectContext:
    """What a detector is built with, once per audit: the user's profile (None without
    ``--profile``), the decoding limits, and the known-value matcher asked for ("auto",
    "hyperscan" or "portable")."""

    profile: Profile | None
    limits: Limits
    matcher: str = "auto"


class RequestDetector(Protocol):
    """Finds personal data in one HTTP request.

    ``layers`` are the request taken apart (:mod:`datareach.detect.decode`): every query
    parameter, header, cookie, form field, JSON value, decoded base64 or compressed body...
    with its location and encoding chain; ``ex`` is the request itself. Return
    :class:`~datareach.detect.types.Finding` objects with your own ``data_type``. Runs where
    the request is read: in parallel reader processes for large captures, so keep no state
    that must be seen across requests.
    """

    name: str

    def detect(self, ex: Exchange, layers: Sequence[Layer]) -> Iterable[Finding]: ...


class DetectorFactory(Protocol):
    """What the entry point names: called once per audit (a class taking the context is one);
    returns the detector, or None to sit this audit out (e.g. without a profile)."""

    def __call__(self, context: DetectContext) -> RequestDetector | None: ...


class _Builtin:
    """A built-in detector: the :class:`Detector` weighs the built-ins' findings against each
    other's (a value found in a layer and in a layer decoded out of it is reported once; a
    pattern finding a profile match covers is dropped); a plugin's findings are only weighed
    against its own."""

    name: str

    def candidates(self, layers: list[Layer], cleartext: bool, gate: RequestGate | None = None) -> list[_Candidate]:
        """``gate``: the prefilter's answer for the request (None: look everywhere)."""
        raise NotImplementedError

    def after(self, layers: list[Layer], cleartext: bool, profile_families: set[str]) -> list[Finding]:
        """Findings added once the candidates are settled."""
        return []

    def detect(self, ex: Exchange, layers: Sequence[Layer]) -> list[Finding]:
        """On its own, as a :class:`RequestDetector` (the :class:`Detector` does more: see it)."""
        cleartext = ex.scheme == "http"
        found = [c.finding for c in self.candidates(list(layers), cleartext)]
        return found + self.after(list(layers), cleartext, set())


class KnownValues(_Builtin):
    """The built-in ``known`` detector: the user's own values (the profile) in every form."""

    name = "known"

    def __init__(self, context: DetectContext) -> None:
        profile = context.profile
        self.forms = profile_forms(profile) if profile is not None else []
        self.matcher = Matcher(self.forms, engine=context.matcher) if self.forms else None
        self._rank = {form: i for i, form in reversed(list(enumerate(self.forms)))}
        values = dict(profile.items()) if profile is not None else {}
        if profile is not None and profile.has_location:
            values["location"] = f"{profile.latitude},{profile.longitude}"
        self._values = values

    def candidates(self, layers: list[Layer], cleartext: bool, gate: RequestGate | None = None) -> list[_Candidate]:
        if self.matcher is None:
            return []
        # one finding per (layer, data type): the most informative form (forms are ordered so)
        best: dict[tuple[int, str], tuple[int, Layer, Form]] = {}
        # no needle anywhere in the raw request: only the layers decoded otherwise can hold one
        skip = gate.literal_flags(layers) if gate is not None and not gate.known else None
        matches = self.matcher.scan_layers(layers, skip)
        located = _both_coordinates([form for _layer, form in matches if form.data_type == "location"])
        for layer, form in matches:
            k = (id(layer), form.data_type)
            r = self._rank.get(form, len(self._rank))
            if k not in best or r < best[k][0]:
                best[k] = (r, layer, form)
        chosen = sorted(best.values(), key=lambda b: b[0])
        if not located:
            chosen = [c for c in chosen if c[2].data_type != "location"]
        out = []
        for _r, layer, form in chosen:
            encoding = [*layer.encoding, form.transform] if form.transform != "as is" else list(layer.encoding)
            value = form.value or self._values.get(form.data_type, "")  # (the very value of a key's several)
            out.append(_Candidate(form.data_type, layer.encoding, Finding(
                data_type=form.data_type, source="profile",
                categories=categories(form.data_type, cleartext=cleartext),
                encoding=encoding, location=layer.location,
                value=value, value_redacted=redact(value), confidence=1.0,
            )))
        return out


class Patterns(_Builtin):
    """The built-in ``patterns`` detector: personal data recognised by its form and key."""

    name = "patterns"

    def __init__(self, context: DetectContext) -> None:
        pass

    def candidates(self, layers: list[Layer], cleartext: bool, gate: RequestGate | None = None) -> list[_Candidate]:
        out = []
        seen: set[tuple[str, tuple[str, ...], str]] = set()
        gated = gate is not None and not gate.every
        literal = gate.literal_flags(layers) if gate is not None and gated else []
        families = gate.families if gate is not None else None
        for n, layer in enumerate(layers):
            for hit in detect_patterns(layer, families if gated and literal[n] else None):
                key = (hit.data_type, layer.encoding, hit.value)
                if key in seen:
                    continue
                seen.add(key)
                out.append(_Candidate(SAME_AS_PROFILE.get(hit.data_type, hit.data_type), layer.encoding, Finding(
                    data_type=canonical_data_type(hit.data_type), source="pattern",
                    categories=categories(hit.data_type, cleartext=cleartext),
                    encoding=list(layer.encoding), location=layer.location,
                    value=hit.value, value_redacted=redact(hit.value), confidence=hit.confidence,
                )))
        return out

    def after(self, layers: list[Layer], cleartext: bool, profile_families: set[str]) -> list[Finding]:
        found = []
        for hit in detect_fingerprint(layers):
            if SAME_AS_PROFILE.get(hit.data_type) in profile_families:
                continue  # a profile match of the same data already reports it
            found.append(Finding(
                data_type=canonical_data_type(hit.data_type), source="pattern",
                categories=categories(hit.data_type, cleartext=cleartext),
                encoding=[], location="request", value=hit.value,
                value_redacted=redact(hit.value), confidence=hit.confidence,
            ))
        return found


#: The built-in detectors, in the order they run. pyproject.toml declares the same names under
#: ``[project.entry-points."datareach.detectors"]`` (a test checks it).
BUILTIN_DETECTORS: tuple[tuple[str, Callable[[DetectContext], _Builtin]], ...] = (
    ("known", KnownValues),
    ("patterns", Patterns),
)


def plugin_detectors(context: DetectContext) -> list[tuple[str, RequestDetector]]:
    """The plugins' detectors for this audit with their entry-point names, sorted by
    distribution and name. A plugin that fails to load or to build, or whose name a built-in
    has, is logged and left out."""
    from datareach.schema import entrypoints

    out: list[tuple[str, RequestDetector]] = []
    taken = {name for name, _ in BUILTIN_DETECTORS}
    for ep in entrypoints.unclaimed(entrypoints.DETECTORS, taken, "detector"):
        try:
            factory = ep.load()
            detector = factory(context)
            if detector is not None and not callable(getattr(detector, "detect", None)):
                raise entrypoints.PluginError(f"{ep.describe()} is not a detector: it has no detect method")
        except Exception as exc:
            message = str(exc) if isinstance(exc, entrypoints.PluginError) else \
                f"{ep.describe()} cannot be set up: {type(exc).__name__}: {exc}"
            entrypoints.warn(f"{ep.group}:{ep.name}:{ep.dist}:load", message)
            continue
        taken.add(ep.name)
        if detector is not None:
            out.append((ep.name, detector))
    return out


class Detector:
    """Finds personal data in requests; build one per audit (it compiles the profile's forms).

    Runs the built-in detectors (``known``, ``patterns``), then the plugins' (entry-point group
    ``datareach.detectors``; ``plugins=False`` leaves them out).

    ``prefilter`` (default True): one pass over each raw request first (:mod:`.prefilter`), so
    that the built-ins look only where something can be found; the findings are the same
    without it (a property test checks), only slower. Plugins always see every layer.
    ``memo`` (default True): header and cookie values that repeat across requests are decoded
    once (:class:`~.decode.DecodeMemo`; the same layers and cuts as without it).
    """

    def __init__(self, profile: Profile | None = None, *, engine: str = "auto", limits: Limits | None = None,
                 plugins: bool = True, prefilter: bool = True, memo: bool = True) -> None:
        self.profile = profile
        self.limits = limits if limits is not None else Limits()
        context = DetectContext(profile, self.limits, engine)
        self._builtin = [factory(context) for _name, factory in BUILTIN_DETECTORS]
        known = next(d for d in self._builtin if isinstance(d, KnownValues))
        self.forms = known.forms
        self.matcher = known.matcher
        self.plugins = plugin_detectors(context) if plugins else []
        self.prefilter = Prefilter(self.matcher, engine) if prefilter else None
        #: header and cookie values decoded in earlier requests (bounded; counted)
        self.memo: DecodeMemo | None = DecodeMemo() if memo else None

    @property
    def engine(self) -> str | None:
        return self.matcher.engine if self.matcher is not None else None

    def detect(self, ex: Exchange) -> tuple[list[Finding], list[str]]:
        """The findings in one request, and what the decoding limits cut in it (after what the
        reader noted in ``ex.decode_cuts``, e.g. a header block read in part: the caller replaces
        ``ex.decode_cuts`` with the result).

        A value found in a layer and again in a layer decoded out of it is reported once, at
        the deepest layer (the most exact encoding chain); a pattern finding that a profile
        match already covers in the same place is dropped. The plugins' findings come after (a
        value one plugin found in a layer and in a layer decoded out of it counts once); a
        plugin that raises is named in the cuts (its findings may be missing).
        """
        decoded = decode_exchange(ex, self.limits, self.memo)
        # what the reader already noted (a header block read in part) comes first
        cuts = [c for c in ex.decode_cuts or () if c not in decoded.cuts] + decoded.cuts
        layers = decoded.layers
        cleartext = ex.scheme == "http"
        gate = self.prefilter.scan(ex) if self.prefilter is not None else None
        if gate is not None and gate.spares_nothing:
            gate = None  # every anchor and a needle: nothing to spare, no layer to classify
        candidates: list[_Candidate] = []
        budget = self.limits.max_matches
        for builtin in self._builtin:
            found_here = builtin.candidates(layers, cleartext, gate)
            if len(candidates) + len(found_here) > budget:
                # the budget of the request: what is past it is not weighed (each candidate is
                # weighed against every other), and the cut says where it stopped
                cut_at = found_here[budget - len(candidates)]
                cuts.append(f"matches limit {budget} reached at {' > '.join(cut_at.path)} "
                            f"({builtin.name}); the request's other matches were not kept")
                candidates += found_here[:budget - len(candidates)]
                break
            candidates += found_here
        kept = [
            c for c in candidates
            if not any(o.family == c.family and _is_ancestor(c.path, o.path) for o in candidates)
        ]
        covered = {(c.family, c.path) for c in kept if c.finding.source == "profile"}
        kept = [c for c in kept if c.finding.source == "profile" or (c.family, c.path) not in covered]
        found = [c.finding for c in kept]
        families = {c.family for c in kept if c.finding.source == "profile"}
        for builtin in self._builtin:
            found += builtin.after(layers, cleartext, families)
        for name, plugin in self.plugins:
            self._run_plugin(name, plugin, ex, layers, found, cuts)
        return found, list(dict.fromkeys(cuts))

    @staticmethod
    def _run_plugin(name: str, plugin: RequestDetector, ex: Exchange, layers: list[Layer],
                    found: list[Finding], cuts: list[str]) -> None:
        try:
            out = list(plugin.detect(ex, layers))
            for f in out:
                if not isinstance(f, Finding):
                    raise TypeError(f"it returned a {type(f).__name__}, not a Finding")
        except Exception as exc:  # a plugin's bug must not stop the audit: say so where it happened
            from datareach.schema import entrypoints

            problem = f"detector plugin {name!r} failed: {type(exc).__name__}: {exc}"
            cuts.append(problem)
            entrypoints.warn(f"{entrypoints.DETECTORS}:{name}:detect", f"{problem} (in a request to {ex.host}; "
                             "the request's decode_cuts say so for each request)")
            return
        if len(out) > 1:  # as for the built-ins: a value found again in a layer decoded out of
            # its layer (the raw query string, then the parameter) is reported at the deepest one
            paths = [(f.data_type, f.value, tuple(f.encoding)) for f in out]
            out = [f for f, (t, v, p) in zip(out, paths, strict=True)
                   if not any(t == t2 and v == v2 and _is_ancestor(p, p2) for t2, v2, p2 in paths)]
        found += out
