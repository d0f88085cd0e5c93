"""Continuous fuzzing of datareach's hostile-input surface (issue 18).

Harnesses (:mod:`fuzz.harnesses`) cover each reader (pcap, pcapng, HAR, mitmproxy flow files and
their JSON records, the PCAPdroid trailer), the dissectors (DNS, TLS, QUIC Initial, HTTP/1), the
decoding chain with the detectors, the policy and profile loaders, and a whole audit rendered in
every report format. :mod:`fuzz.engine` runs a case under memory and time bounds and turns what
goes wrong into deduplicated findings; :mod:`fuzz.runner` is the mutation loop
(:mod:`fuzz.mutate`) and the replay of reproducers; :mod:`fuzz.atheris_engine` runs the same
harnesses under libFuzzer (coverage-guided) when atheris is installed.

    python -m fuzz list
    python -m fuzz run --seconds 60                 # every harness, a minute each (make fuzz)
    python -m fuzz run --harness har --cases 100000 --seed 7
    python -m fuzz replay                          # fuzz/regressions/<harness>/*

``fuzz/regressions/<harness>/`` holds the inputs that once found something, each with a ``.txt``
note; ``tests/test_fuzz_regressions.py`` replays them and runs every harness briefly.
It lives at the repository root, not under tests/: it is a tool with its own command line and
data (regressions, CAMPAIGN.md), and pytest must not collect its modules.
"""
