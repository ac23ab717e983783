"""What every benchmark starts: its own broker node, Mongo wire server and
SMTP server on free loopback ports, in a temporary directory; and the helpers
they share (a percentile, a bounded wait)."""
import contextlib
import tempfile
import time
from pathlib import Path

from deploy.local import Broker, MailSink, MongoWire, free_port


class Infra:
    def __init__(self, broker, mongo, mail, base=None):
        self.broker, self.mongo, self.mail, self.base = broker, mongo, mail, base
        self.amqp_uri, self.mongo_uri = broker.amqp_uri, mongo.uri


@contextlib.contextmanager
def local_infra(mail=False):
    base = Path(tempfile.mkdtemp(prefix="zhzx-bench-"))
    broker = Broker(base / "rabbitmq", node=f"zhzx-bench-{free_port()}@localhost",
                    amqp_port=free_port(), mgmt_port=free_port(), prom_port=free_port(),
                    dist_port=free_port(), cluster_name="zhzx-bench")
    mongo = MongoWire(base / "mongo", free_port())
    sink = MailSink(base / "mail", free_port()) if mail else None
    started = []
    try:
        for part in (broker, mongo, sink):
            if part is not None:
                part.start()
                started.append(part)
        yield Infra(broker, mongo, sink, base)
    finally:
        for part in reversed(started):
            part.stop()


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def wait(condition, limit_s, every=0.05):
    """``condition()`` once truthy (returned), checked every ``every`` s; the
    benchmark stops after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"gave up after {limit_s}s")


def consume(amqp_uri, queues, on_message, stop, ready=None, limit_s=7200):
    """Consume ``queues`` with ``on_message(body, message)`` until ``stop``
    (a threading.Event) is set, at most ``limit_s``; ``ready`` is set once
    the queues are bound."""
    from kombu import Connection
    with Connection(amqp_uri) as conn:
        with conn.Consumer(queues, callbacks=[on_message]):
            if ready is not None:
                ready.set()
            deadline = time.monotonic() + limit_s
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
