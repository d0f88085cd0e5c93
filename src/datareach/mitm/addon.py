"""datareach's mitmproxy addon: ``mitmdump -s "$(python -m datareach.mitm --path)"``.

Options (mitmproxy's option system, ``--set NAME=VALUE``):

* ``datareach_profile`` -- the test device's values (TOML, ``datareach profile init``);
* ``datareach_policy`` -- policy presets or files, comma-separated;
* ``datareach_geo_db`` -- MaxMind-format .mmdb files to use instead of the shipped geo data,
  separated by ``os.pathsep`` (``:``; ``;`` on Windows), for the live lines and the report alike;
* ``datareach_report`` -- report path without extension (default ``datareach-report``): the
  addon saves the flows to ``REPORT.mitm`` and, when the proxy stops, writes ``REPORT.json``
  and ``REPORT.html``, as ``datareach audit`` does;
* ``datareach_python`` -- the Python that runs datareach (default: ``$DATAREACH_PYTHON``, the
  Python named by the launcher ``python -m datareach.mitm --path`` printed, this Python if it has
  datareach, the virtualenv this file is installed in, or ``datareach`` on PATH).

This file runs inside mitmproxy's Python and imports only the standard library and mitmproxy
(mitmproxy's pinned dependencies keep it out of datareach's environment). The event loop only
ever puts completed flows on a queue; a thread serialises them (to the flow file, and as records
for the worker), and the analysis runs in a separate datareach process. Every failure is logged
and swallowed: the proxied traffic never waits for datareach and never breaks because of it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from mitmproxy import ctx
from mitmproxy import io as mio

log = logging.getLogger("datareach")
HERE = Path(__file__).resolve().parent


def _load_bridge() -> Any:
    spec = importlib.util.spec_from_file_location("datareach_mitm_bridge", HERE.parent / "sources" / "mitm_bridge.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bridge = _load_bridge()
_STOP = object()
#: Set by the launcher that ``python -m datareach.mitm --path`` writes (datareach.mitm.addon_path):
#: ``python``, the Python that printed it; ``import_path``, where that Python imports datareach
#: from when datareach is not installed in it ("" otherwise).
EMBEDDED: dict[str, str] = {}
#: how long the saving thread waits to gather a batch of flows
BATCH_SECONDS = 0.25
#: request and response bodies kept in memory before the flows are written out
UNSAVED_LIMIT = 256 << 20


def default_datareach_python() -> str:
    """Where datareach is installed (see the module docstring); "" when not found."""
    env = os.environ.get("DATAREACH_PYTHON")
    if env:
        return env
    embedded = EMBEDDED.get("python", "")
    if embedded and os.path.isfile(embedded):
        return embedded
    if importlib.util.find_spec("datareach") is not None:
        return sys.executable
    for parent in HERE.parents:  # installed into a virtualenv's site-packages
        if (parent / "pyvenv.cfg").is_file() and (parent / "bin" / "python").exists():
            return str(parent / "bin" / "python")
    found = shutil.which("datareach")
    return (bridge.shebang_python(os.path.realpath(found)) or "") if found else ""


def worker_env() -> dict[str, str]:
    """The worker's environment: this one, plus the launcher's ``import_path`` on PYTHONPATH."""
    env = dict(os.environ)
    extra = EMBEDDED.get("import_path", "")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH", "")) if p)
    return env


class DatareachAddon:
    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.flow_file: IO[bytes] | None = None
        self.writer: Any = None
        self.pending: dict[str, Any] = {}
        self.unsaved: list[Any] = []
        self.unsaved_bytes = 0
        self.worker_dead = False
        self.started = False

    # -- mitmproxy hooks ---------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option("datareach_profile", str, "", "datareach: the test device's values (profile TOML)")
        loader.add_option("datareach_policy", str, "", "datareach: policy presets or files, comma-separated")
        loader.add_option("datareach_geo_db", str, "",
                          "datareach: .mmdb files to use instead of the shipped geo data, separated by os.pathsep")
        loader.add_option("datareach_report", str, "datareach-report",
                          "datareach: report path without extension (.json, .html; flows saved to .mitm)")
        loader.add_option("datareach_python", str, "", "datareach: the Python that runs datareach")

    def running(self) -> None:
        try:
            self._start()
        except Exception:
            log.warning("datareach: could not start; the proxy runs on without it", exc_info=True)

    def request(self, flow: Any) -> None:
        self.pending[flow.id] = flow  # a flow that never gets a response is sent at shutdown

    def response(self, flow: Any) -> None:
        if flow.response is not None and flow.response.status_code == 101:
            return  # a WebSocket: sent when it ends, with its messages
        self._done_with(flow)

    def error(self, flow: Any) -> None:
        self._done_with(flow)

    def websocket_end(self, flow: Any) -> None:
        self._done_with(flow)

    def tcp_end(self, flow: Any) -> None:
        self._done_with(flow)

    def tcp_error(self, flow: Any) -> None:
        self._done_with(flow)

    def udp_end(self, flow: Any) -> None:
        self._done_with(flow)

    def udp_error(self, flow: Any) -> None:
        self._done_with(flow)

    def dns_response(self, flow: Any) -> None:
        self._done_with(flow)

    def dns_error(self, flow: Any) -> None:
        self._done_with(flow)

    def done(self) -> None:
        try:
            self._finish()
        except Exception:
            log.exception("datareach: failed while stopping")

    # -- the work ------------------------------------------------------------------------------

    def _done_with(self, flow: Any) -> None:
        try:
            self.pending.pop(flow.id, None)
            if self.started:
                self.queue.put(flow)
        except Exception:
            log.exception("datareach: could not queue a flow")

    def _start(self) -> None:
        report = ctx.options.datareach_report or "datareach-report"
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        flows = f"{report}.mitm"
        self.flow_file = open(flows, "wb")  # noqa: SIM115 - closed in done()
        self.writer = mio.FlowWriter(self.flow_file)
        python = ctx.options.datareach_python or default_datareach_python()
        if not python:
            # a warning, not an error: mitmproxy stops when errors are logged while it starts
            log.warning("datareach: datareach's Python not found: set datareach_python (or $DATAREACH_PYTHON); "
                      "flows are saved to %s", flows)
            self.worker_dead = True
        else:
            cmd = [python, "-m", "datareach.mitm", "worker", "--report", report, "--flows", flows,
                   "--mitmproxy-python", sys.executable]
            if ctx.options.datareach_profile:
                cmd += ["--profile", ctx.options.datareach_profile]
            if ctx.options.datareach_policy:
                cmd += ["--policy", ctx.options.datareach_policy]
            for geo_db in ctx.options.datareach_geo_db.split(os.pathsep):
                if geo_db:
                    cmd += ["--geo-db", geo_db]
            try:
                # its own session: Ctrl-C stops mitmdump, which then closes the worker's input
                self.worker = subprocess.Popen(cmd, stdin=subprocess.PIPE, start_new_session=True, env=worker_env())
            except OSError as exc:
                log.warning("datareach: cannot start the worker (%s): %s", python, exc)
                self.worker_dead = True
        self.thread = threading.Thread(target=self._run, name="datareach", daemon=True)
        self.thread.start()
        self.started = True

    def _run(self) -> None:
        # Flows are taken in batches, a few times a second: a thread woken for every flow would
        # take the interpreter lock from the event loop thousands of times a second.
        while True:
            batch = [self.queue.get()]
            time.sleep(BATCH_SECONDS)
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self.queue.get_nowait())
            for flow in batch:
                if flow is _STOP:
                    if self.worker is not None and self.worker.stdin is not None and not self.worker_dead:
                        with contextlib.suppress(OSError):
                            self.worker.stdin.flush()
                    return
                self._send(flow)
            if self.worker is not None and self.worker.stdin is not None and not self.worker_dead:
                try:
                    self.worker.stdin.flush()
                except OSError:
                    self.worker_dead = True

    def _send(self, flow: Any) -> None:
        self._keep(flow)
        if self.worker_dead or self.worker is None or self.worker.stdin is None:
            return
        try:
            line = json.dumps(bridge.flow_record(flow)) + "\n"
            self.worker.stdin.write(line.encode("utf-8", "surrogatepass"))
        except (BrokenPipeError, OSError):
            self.worker_dead = True
            log.error("datareach: the worker stopped (exit status %s); live lines end here, flows are "
                      "still saved", self.worker.poll())
        except Exception:
            log.exception("datareach: could not hand a flow to the worker")

    def _keep(self, flow: Any) -> None:
        """Keep a flow for the flow file. Serialising a flow costs about ten times more than the
        record the worker gets, and it holds the interpreter lock the event loop needs: flows
        are written when the proxy stops, or in one go whenever the kept bodies pass
        UNSAVED_LIMIT bytes, not one by one while traffic flows."""
        try:
            self.unsaved.append(flow)
            for message in (getattr(flow, "request", None), getattr(flow, "response", None)):
                raw = getattr(message, "raw_content", None)
                self.unsaved_bytes += len(raw) if raw else 0
            if self.unsaved_bytes > UNSAVED_LIMIT:
                self._save()
        except Exception:
            log.exception("datareach: could not keep a flow")

    def _save(self) -> None:
        flows, self.unsaved, self.unsaved_bytes = self.unsaved, [], 0
        for flow in flows:
            try:
                self.writer.add(flow)
            except Exception:
                log.exception("datareach: could not save a flow")
        if self.flow_file is not None:
            self.flow_file.flush()

    def _finish(self) -> None:
        if not self.started:
            return
        self.started = False
        for flow in list(self.pending.values()):
            self.queue.put(flow)
        self.pending.clear()
        self.queue.put(_STOP)
        if self.thread is not None:
            self.thread.join()
        self._save()
        if self.flow_file is not None:
            self.flow_file.close()
        if self.worker is not None:
            try:
                if self.worker.stdin is not None:
                    self.worker.stdin.close()
            except OSError:
                pass
            code = self.worker.wait()
            if code:
                log.error("datareach: the worker ended with exit status %s", code)


addons = [DatareachAddon()]
