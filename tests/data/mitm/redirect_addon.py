"""Test addon: every upstream connection goes to the loopback test server, whatever the request
named (port 80 -> $REDIRECT_HTTP, anything else -> $REDIRECT_HTTPS). The flows keep the names the
client used (Host header, SNI); only the address mitmproxy connects to changes. Works with the
``server_connect`` hook of mitmproxy 7 and later."""

import os

HTTP_PORT = int(os.environ["REDIRECT_HTTP"])
HTTPS_PORT = int(os.environ["REDIRECT_HTTPS"])


def server_connect(data):  # type: ignore[no-untyped-def]
    _host, port = data.server.address
    data.server.address = ("127.0.0.1", HTTP_PORT if port == 80 else HTTPS_PORT)
