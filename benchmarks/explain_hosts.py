"""A realistic and hard host list for ``datareach explain`` (its benchmarks and tests).

    python benchmarks/explain_hosts.py 200000 > hosts.txt

Few repeats (most names are distinct: random labels), in this mix:

- 25% names under knowledge-base domains, curated and from the shipped datasets (trackers, SDKs),
  one to three random labels in front, and 5% the knowledge-base domains themselves;
- 10% deep names (5 to 9 labels) under knowledge-base domains or unknown ones;
- 12% tenants of shared platforms (``d1x2.cloudfront.net``, ``x.s3.amazonaws.com``,
  ``app.firebaseio.com``, the platforms of the knowledge base), some with an embedded customer
  name (``api.ring.com.cdn.cloudflare.net``);
- 25% unknown random names under real and unknown top-level domains;
- 10% IPv4 and 5% IPv6 addresses (random, some in the ranges of big networks and anycast CDNs,
  some private or reserved);
- 5% written as URLs, ``host:port``, ``[v6]:port``, with upper case or a root dot;
- 3% oddities: blanks, comments-only lines, single labels, punycode and Unicode names, junk.
"""

from __future__ import annotations

import random
import sys

_WORDS = ["api", "cdn", "log", "sdk", "m", "www", "img", "static", "t", "a1", "edge", "config", "events",
          "collect", "graph", "app", "mobile", "ads", "pixel", "track", "telemetry", "eu", "us-east-1"]
_TLDS = ["com", "net", "org", "io", "co.uk", "de", "cn", "ru", "app", "dev", "xyz", "info", "com.br",
         "co.jp", "fr", "lan", "local", "internal", "test", "zz"]
_PLATFORMS = ["cloudfront.net", "s3.amazonaws.com", "firebaseio.com", "appspot.com", "herokuapp.com",
              "azurewebsites.net", "github.io", "cdn.cloudflare.net", "edgekey.net", "blob.core.windows.net",
              "elb.amazonaws.com", "web.app", "firebaseapp.com", "netlify.app", "vercel.app"]
_V4_NETS = ["157.240", "31.13", "142.250", "172.217", "104.16", "151.101", "13.32", "52.84", "23.235",
            "20.190", "17.253", "8.8", "1.1", "10.0", "192.168", "100.64", "203.0"]
_V6_NETS = ["2a03:2880", "2607:f8b0", "2606:4700", "2600:9000", "2a00:1450", "2001:db8", "fd00", "fe80"]


def _token(rng: random.Random, lo: int = 4, hi: int = 12) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(lo, hi)))


def _label(rng: random.Random) -> str:
    return rng.choice(_WORDS) + str(rng.randrange(1000)) if rng.random() < 0.5 else _token(rng)


def make_hard_hosts(n: int, domains: list[str], platforms: list[str], seed: int = 16) -> list[str]:
    """``n`` hosts in the module's mix; ``domains``: the knowledge base's domains, ``platforms``:
    its platform suffixes (both sorted, so that a seed gives the same list)."""
    rng = random.Random(seed)
    plats = sorted(set(_PLATFORMS) | set(rng.sample(platforms, min(40, len(platforms)))))
    out: list[str] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.25:
            host = ".".join([*(_label(rng) for _ in range(rng.randint(1, 3))), rng.choice(domains)])
        elif r < 0.30:
            host = rng.choice(domains)
        elif r < 0.40:
            base = rng.choice(domains) if rng.random() < 0.6 else f"{_token(rng)}.{rng.choice(_TLDS)}"
            host = ".".join([*(_label(rng) for _ in range(rng.randint(4, 8))), base])
        elif r < 0.52:
            plat = rng.choice(plats)
            if rng.random() < 0.15:
                host = f"{_label(rng)}.{rng.choice(domains)}.{plat}"
            else:
                host = ".".join([*(_token(rng, 6, 14) for _ in range(rng.randint(1, 2))), plat])
        elif r < 0.77:
            host = ".".join([*(_label(rng) for _ in range(rng.randint(0, 2))), _token(rng), rng.choice(_TLDS)])
        elif r < 0.87:
            if rng.random() < 0.5:
                host = f"{rng.choice(_V4_NETS)}.{rng.randrange(256)}.{rng.randrange(256)}"
            else:
                host = ".".join(str(rng.randrange(1, 256)) for _ in range(4))
        elif r < 0.92:
            groups = [f"{rng.randrange(65536):x}" for _ in range(rng.randint(2, 6))]
            host = rng.choice(_V6_NETS) + ":" + ":".join(groups) if len(groups) == 6 else \
                rng.choice(_V6_NETS) + "::" + ":".join(groups)
        elif r < 0.97:
            name = ".".join([_label(rng), rng.choice(domains)])
            form = rng.randrange(6)
            if form == 0:
                host = f"https://{name}/v1/{_token(rng)}?q={_token(rng)}"
            elif form == 1:
                host = f"{name}:{rng.randrange(1, 65536)}"
            elif form == 2:
                host = f"[2a03:2880::{rng.randrange(65536):x}]:443"
            elif form == 3:
                host = name.upper() + "."
            elif form == 4:
                host = f"http://user:pw@{name}:8080/#frag"
            else:
                host = f"  {name}  "
        else:
            host = rng.choice(["", "   ", "localhost", "xn--bcher-kva.example", "bücher.de", "münchen.xn--p1ai",
                               "a..b", "-bad-.com", "x" * 70 + ".com", "printer.lan", "_dmarc.example.com",
                               "1.2.3", "999.1.1.1", "::", "::1", "fe80::1%eth0", "a\tb.com", "ex ample.com"])
        out.append(host)
    return out


def kb_hard_hosts(n: int, seed: int = 16) -> list[str]:
    """:func:`make_hard_hosts` over the knowledge base this process loads."""
    from datareach.kb import knowledge_base

    kb = knowledge_base()
    return make_hard_hosts(n, sorted(kb.domains), sorted(kb.platforms), seed)


if __name__ == "__main__":
    sys.stdout.write("\n".join(kb_hard_hosts(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)) + "\n")
