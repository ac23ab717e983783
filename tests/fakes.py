"""Real local servers standing in for the notification providers: an SMTP
server (aiosmtpd, its own process, writing a Maildir) and HTTP endpoints that
record what they receive and can be told to fail or hang."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deploy.local import MailSink, free_port


class SmtpServer(MailSink):
    """The platform's local SMTP server on a free port of the test's own."""

    def __init__(self, base):
        super().__init__(Path(base) / f"smtp-{time.monotonic_ns()}", free_port())

    def start(self):
        super().start(timeout=20)
        return self

    def config(self):
        return {"host": "127.0.0.1", "port": self.port, "sender": "noreply@zhzx.local",
                "timeout": 5}


class HttpProvider:
    """POSTs are recorded; ``mode`` is "ok", "fail" (HTTP 503) or "hang"."""

    def __init__(self):
        self.received = []
        self.mode = "ok"
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if owner.mode == "hang":
                    time.sleep(30)
                    return
                with owner.lock:
                    owner.received.append({"path": self.path, "headers": dict(self.headers),
                                           "raw": body, "json": json.loads(body or b"null")})
                self.send_response(503 if owner.mode == "fail" else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a provider takes many connections at once

        self.server = Server(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- event types for tests of the kernel's outbox and numbering -----------------
def _test_events():
    from marshmallow import fields

    from services.common.events import Payload, Registry, all_types
    from services.common.names import UP
    if "x.a" in all_types():
        return
    registry = Registry("tests")

    class Anything(Payload):
        k = fields.List(fields.Raw())
        nested = fields.Dict()

    for name in ("x.a", "x.b", "x.created", "x.changed"):
        registry.define(name, Anything, "test event", aggregate="test")
    registry.define("x.linked", Anything, "test linked event", aggregate="test", via=UP)


_test_events()
