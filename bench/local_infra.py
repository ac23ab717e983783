"""What every benchmark starts: its own broker node, Mongo wire server and
SMTP server on free loopback ports, in a temporary directory."""
import contextlib
import tempfile
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
