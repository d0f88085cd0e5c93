# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
NATIVE := $(VENV)/.native
# the sources of the packet core that setup.py compiles (datareach._core.NATIVE_MODULES)
NATIVE_SRC := setup.py src/datareach/_core.py $(addprefix src/datareach/,dissect/packets.py dissect/dns.py \
  dissect/tls.py dissect/http1.py sources/pcap.py detect/decode.py detect/patterns.py detect/prefilter.py)
MITM := $(VENV)/mitmproxy/.installed
EXAMPLE := examples/mobile-app-session.pcapng

.PHONY: demo mitmproxy test lint typecheck unit system-deps example bench bench-quick bench-decrypt bench-detect bench-mitm bench-memory bench-corpus bench-logs bench-spark bench-coverage bench-explain clean fuzz update-network-data

# Two layers in the one .venv. `make demo` installs the runtime alone (what `pip install .` and
# `pipx install .` give); `make test` and the benchmarks add the test and benchmark tools (the
# `test` extra) and mitmproxy's environment.
# `pip install -e .` compiles the packet core with mypyc where a C compiler is (setup.py; the
# extension modules land beside their sources in src/, gitignored); DATAREACH_PURE_PYTHON=1 skips it.
$(RUNTIME): pyproject.toml setup.py src/datareach/_core.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	# byte-compile our own modules, as a wheel install would (the editable install does not)
	$(BIN)/python -m compileall -q src >/dev/null
	touch $(RUNTIME) $(NATIVE)

# the test extra adds packages only: the project itself is not compiled a second time (the packet
# core built by $(RUNTIME) stays in src/; $(NATIVE) rebuilds it when its sources change)
$(STAMP): $(RUNTIME)
	DATAREACH_PURE_PYTHON=1 $(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

# mitmproxy (flow files, the live addon, `datareach proxy`) pins Brotli<=1.1, cryptography<44.1
# and aioquic<=1.2, which datareach cannot share (brotli>=1.2 bounds decompression): it gets an
# environment of its own inside .venv, where datareach finds it. datareach also makes it by itself
# the first time a mitmproxy feature is used (datareach.sources.mitm.install_mitmproxy).
$(MITM): $(RUNTIME)
	$(BIN)/python -m datareach.mitm --install
	touch $(MITM)

mitmproxy: $(MITM)

# the packet core compiled again in place when its sources changed since (a compiled module older
# than its source is not used: datareach._core); nothing to do where there is no C compiler
$(NATIVE): $(NATIVE_SRC) | $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(NATIVE)

# Debian packages the tests need: tshark is the independent reference the capture tests
# compare against (its wireshark-common brings dumpcap and editcap, which the decryption tests
# capture with and embed key logs with); openssl and curl are the real TLS peers of those tests;
# chromium runs the HTML report in the browser tests (tests/test_report_browser.py); a Java
# runtime runs Spark for the Spark engine's tests.
system-deps:
	@if ! command -v tshark >/dev/null 2>&1; then \
	  echo "installing tshark (Debian package) for the cross-check tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null) \
	    || { echo "could not install tshark: run 'apt-get install tshark' as root"; exit 1; }; \
	fi
	@for tool in openssl curl zsh fish; do \
	  if ! command -v $$tool >/dev/null 2>&1; then \
	    echo "installing $$tool (Debian package) for the tests (real TLS peers on loopback; shell completion)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$tool >/dev/null) \
	      || { echo "could not install $$tool: run 'apt-get install $$tool' as root"; exit 1; }; \
	  fi; \
	done
	@if ! command -v tmux >/dev/null 2>&1; then \
	  echo "installing tmux (Debian package) for the terminal table's tests in a real terminal"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null) \
	    || { echo "could not install tmux: run 'apt-get install tmux' as root"; exit 1; }; \
	fi
	@if ! command -v java >/dev/null 2>&1; then \
	  echo "installing a Java runtime (Debian package) for the Spark engine's tests (Spark in local[2])"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null) \
	    || { echo "could not install a Java runtime: run 'apt-get install default-jre-headless' as root"; exit 1; }; \
	fi
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing chromium (Debian package) for the HTML report's browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || { echo "could not install chromium: run 'apt-get install chromium' as root"; exit 1; }; \
	fi

demo: $(RUNTIME)
	@$(BIN)/datareach audit $(EXAMPLE) --profile examples/profile.toml; status=$$?; \
	echo; \
	echo "datareach is installed in $(CURDIR)/$(BIN)/datareach. To run it as \`datareach\`:"; \
	echo "  . $(BIN)/activate            (bash/zsh; activate.fish for fish), or call $(BIN)/datareach directly"; \
	echo "Shell completion: datareach completion bash|zsh|fish (see README). mitmproxy's environment is made"; \
	echo "on first use of a mitmproxy feature, or now with \`make mitmproxy\`."; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples fuzz setup.py
	$(BIN)/mypy

# DATAREACH_EXPECT_NATIVE: where there is a C compiler, the native/pure comparison
# (tests/test_native.py) fails, rather than skips, when the packet core was not compiled
unit: $(STAMP) $(MITM) $(NATIVE)
	DATAREACH_EXPECT_NATIVE=$$(command -v "$${CC:-cc}" >/dev/null 2>&1 && [ -z "$$DATAREACH_PURE_PYTHON" ] && echo 1) \
	  $(BIN)/python -m pytest -n auto

test: $(STAMP) system-deps lint unit

example: $(STAMP)
	$(BIN)/python examples/generate_example.py
	$(BIN)/python examples/generate_example.py --app-version 2

# datareach against tshark on the web and hard mixes at 300 MB (5 alternating rounds each), then the
# hard mix at 3 GB and a million TCP connections (datareach only); captures cached in benchmarks/out/
bench: $(STAMP) system-deps
	$(BIN)/python benchmarks/bench_vs_tshark.py

# the same at 30 MB, three rounds, 60 MB and 20,000 connections: a smoke run of the harness
bench-quick: $(STAMP) system-deps
	$(BIN)/python benchmarks/bench_vs_tshark.py --size-mb 30 --runs 3 --large-mb 60 --large-runs 2 --conns 20000

# 2,000 HTTPS requests from 50 clients through mitmdump, with and without datareach's addon
bench-mitm: $(STAMP) $(MITM)
	$(BIN)/python benchmarks/bench_mitm_load.py

# `datareach explain` on 200,000 hosts of a hard mix (explain_hosts.py) and the warm start of
# `datareach --help` and `datareach explain HOST`: medians and ranges of 5 alternating pairs against
# EXPLAIN_BASE (another tree's src, e.g. a `git worktree` of main), or of this tree alone
EXPLAIN_BASE ?=
bench-explain: $(RUNTIME)
	$(BIN)/python benchmarks/bench_explain_ab.py --hosts 200000 --pairs 5 $(if $(EXPLAIN_BASE),--base $(EXPLAIN_BASE) --check)

# peak memory of the whole process tree on a million distinct destinations and a million HAR entries
bench-memory: $(STAMP)
	$(BIN)/python benchmarks/bench_memory.py

# TLS 1.3/HTTP/2 and QUIC/HTTP/3 with their key log, against tshark decrypting the same capture
bench-decrypt: $(STAMP) system-deps
	$(BIN)/python benchmarks/bench_decrypt.py

# recall against tshark, per kind (TLS/QUIC SNI, HTTP Host and requests, DNS answers), on the ~1,600
# captures of Zeek's and tcpdump's test suites (bare git mirrors: see the script's --help), plus a crash,
# timeout and error census of `datareach audit` on each; tshark's results are cached in benchmarks/out/
bench-corpus: $(STAMP) system-deps
	$(BIN)/python benchmarks/bench_corpus.py

# the DuckDB engine on a day of generated Zeek TSV logs (LOG_ROWS conn rows; the issue's figure is 100 M on
# 2 cores, gzipped, ~10 GB on disk, cached in benchmarks/out/logs/) against the same query in plain DuckDB SQL
LOG_ROWS ?= 10000000
bench-logs: $(STAMP)
	$(BIN)/python benchmarks/bench_logs.py --rows $(LOG_ROWS)

# the Spark engine's parts (docs/scaling.md): session start, the broadcast knowledge base, the
# destination stages per 1,000 destinations in the executors' workers (Spark in local[2])
bench-spark: $(STAMP) system-deps
	PYTHONPATH=src $(BIN)/python benchmarks/bench_spark_stages.py

# coverage of the shipped knowledge base against public tracker datasets (DuckDuckGo, AdGuard, Ghostery,
# Disconnect, X-Ray; issue 15): DATASETS is a directory of their repositories (git clone URLs in
# benchmarks/coverage_data.py; nothing is downloaded here); disagreements are reviewed in
# benchmarks/coverage-disagreements.toml
DATASETS ?= /work/.mirror
bench-coverage: $(STAMP)
	PYTHONPATH=src:. $(BIN)/python benchmarks/bench_coverage.py --datasets $(DATASETS)

# DETECT_CAPTURE: a request-heavy capture for the per-request cost (default: a generated one)
DETECT_CAPTURE ?=
bench-detect: $(STAMP)
	$(BIN)/python benchmarks/bench_detection.py
	$(BIN)/python benchmarks/bench_matcher.py
	@if [ -z "$(DETECT_CAPTURE)" ]; then \
	  $(BIN)/python benchmarks/generate_capture.py --size-mb 40 --out /tmp/datareach-bench-detect.pcap >/dev/null; fi
	$(BIN)/python benchmarks/bench_detect_cost.py $(or $(DETECT_CAPTURE),/tmp/datareach-bench-detect.pcap)

# Every fuzz harness (python -m fuzz list) for FUZZ_SECONDS each, one process; findings and their
# reproducers go to /tmp/fuzz-crashes (fuzz/CAMPAIGN.md: the campaigns run so far).
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	nice -n 10 $(BIN)/python -m fuzz run --seconds $(FUZZ_SECONDS)

# The shipped IP-to-AS and IP-to-country data (src/datareach/enrich/data/network.dat.xz), rebuilt
# from the latest @ip-location-db/asn and @ip-location-db/geo-whois-asn-country packages of the
# npm registry (no other download): every row checked, the counts and the data's date printed.
update-network-data: $(RUNTIME)
	$(BIN)/python scripts/update_network_data.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete
