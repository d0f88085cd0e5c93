"""Build ``src/datareach/report/assets/world-110m.json``, the world map of the HTML report.

The geometry is Natural Earth (public domain, naturalearthdata.com) version 4.1.0 as packaged
by Mike Bostock's ``world-atlas`` 2.0.2 (ISC licence) as TopoJSON; country codes are mapped
from ISO 3166-1 numeric to alpha-2 with Debian's ``iso-codes`` (``/usr/share/iso-codes``).
Nothing is fetched when a report is rendered: the output ships in the package.

To regenerate (a development step, not part of the build)::

    apt-get install iso-codes
    cd /tmp && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    .venv/bin/python docs/make_world_map.py /tmp/package

Shapes come from the 1:110m file (Antarctica left out), projected with the Equal Earth
projection (Šavrič, Patterson & Jenny 2018) to an 800-pixel-wide SVG path per country, in
relative integer coordinates. Every country's marker point is the centroid of its largest
polygon in the 1:50m file, which also has the small states that 1:110m leaves out
(Singapore, Hong Kong, Macau, Bahrain, Malta, ...), so each gets a marker.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any

WIDTH = 800.0
A1, A2, A3, A4 = 1.340264, -0.081106, 0.000893, 0.003796
M = math.sqrt(3) / 2
X_MAX = 2.7063  # Equal Earth x at longitude 180, latitude 0
TOP_LAT, BOTTOM_LAT = 84.0, -58.0


def _ee(lon: float, lat: float) -> tuple[float, float]:
    lam, phi = math.radians(lon), math.radians(lat)
    t = math.asin(M * math.sin(phi))
    t2, t6 = t * t, t**6
    x = 2 * math.sqrt(3) * lam * math.cos(t) / (3 * (9 * A4 * t6 * t2 + 7 * A3 * t6 + 3 * A2 * t2 + A1))
    y = t * (A4 * t6 * t2 + A3 * t6 + A2 * t2 + A1)
    return x, y


SCALE = WIDTH / (2 * X_MAX)
Y_TOP = _ee(0, TOP_LAT)[1]
HEIGHT = round((Y_TOP - _ee(0, BOTTOM_LAT)[1]) * SCALE)


def project(lon: float, lat: float) -> tuple[float, float]:
    x, y = _ee(lon, lat)
    return (x + X_MAX) * SCALE, (Y_TOP - y) * SCALE


def decode_arcs(topo: dict[str, Any]) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], refs: list[int]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for r in refs:
        pts = arcs[r] if r >= 0 else arcs[~r][::-1]
        out.extend(pts[1:] if out else pts)
    return out


def polygons(geom: dict[str, Any], arcs: list[list[tuple[float, float]]]) -> list[list[list[tuple[float, float]]]]:
    if geom["type"] == "Polygon":
        return [[ring(arcs, r) for r in geom["arcs"]]]
    if geom["type"] == "MultiPolygon":
        return [[ring(arcs, r) for r in poly] for poly in geom["arcs"]]
    return []


def area_centroid(pts: list[tuple[float, float]]) -> tuple[float, float, float]:
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
        c = x0 * y1 - x1 * y0
        a += c
        cx += (x0 + x1) * c
        cy += (y0 + y1) * c
    if abs(a) < 1e-9:
        n = len(pts)
        return 0.0, sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    return abs(a) / 2, cx / (3 * a), cy / (3 * a)


def path_d(polys: list[list[list[tuple[float, float]]]]) -> str:
    parts: list[str] = []
    for poly in polys:
        for r in poly:
            pts = [project(lon, lat) for lon, lat in r]
            ints: list[tuple[int, int]] = []
            for x, y in pts:
                p = (round(x), round(y))
                if not ints or p != ints[-1]:
                    ints.append(p)
            if len(ints) < 3:
                continue
            seq = [f"M{ints[0][0]} {ints[0][1]}"]
            rel = []
            for (x0, y0), (x1, y1) in itertools.pairwise(ints):
                rel.append(f"{x1 - x0} {y1 - y0}")
            seq.append("l" + " ".join(rel).replace(" -", "-") + "z")
            parts.append("".join(seq))
    return "".join(parts)


def main(package: Path) -> None:
    iso = json.loads(Path("/usr/share/iso-codes/json/iso_3166-1.json").read_text())["3166-1"]
    alpha2 = {c["numeric"]: c["alpha_2"] for c in iso}
    unofficial = {"Kosovo": "XK"}  # no ISO code; XK is the code in common use

    def code(g: dict[str, Any]) -> str | None:
        if "id" in g:
            return alpha2.get(g["id"])
        return unofficial.get(g.get("properties", {}).get("name", ""))

    countries: dict[str, dict[str, Any]] = {}
    small = json.loads((package / "countries-110m.json").read_text())
    arcs = decode_arcs(small)
    for g in small["objects"]["countries"]["geometries"]:
        cc = code(g)
        if cc is None or cc == "AQ":
            continue
        d = path_d(polygons(g, arcs))
        if d:
            countries.setdefault(cc, {"name": g["properties"]["name"]})["d"] = d
    mid = json.loads((package / "countries-50m.json").read_text())
    arcs = decode_arcs(mid)
    for g in mid["objects"]["countries"]["geometries"]:
        cc = code(g)
        if cc is None or cc == "AQ":
            continue
        best = max(
            (area_centroid([project(lon, lat) for lon, lat in poly[0]]) for poly in polygons(g, arcs)),
            default=None,
        )
        if best is None:
            continue
        entry = countries.setdefault(cc, {"name": g["properties"]["name"]})
        entry["c"] = [round(best[1], 1), round(best[2], 1)]
    out = {
        "source": "Natural Earth 4.1.0 (public domain), via world-atlas 2.0.2 (ISC); shapes 1:110m, "
                  "marker points 1:50m; Equal Earth projection",
        "width": round(WIDTH),
        "height": HEIGHT,
        "countries": dict(sorted(countries.items())),
    }
    dest = Path(__file__).resolve().parent.parent / "src/datareach/report/assets/world-110m.json"
    dest.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{dest}: {len(countries)} countries, {dest.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
