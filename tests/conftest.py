import eventlet

eventlet.monkey_patch()  # nameko needs it before anything imports socket users

import os  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import services  # noqa: E402,F401  (silences eventlet's deprecation notice)
from tests import support  # noqa: E402

# A stopping nameko container waits for its consumer loop to notice the stop, which
# the loop checks between broker reads of `safety_interval` seconds (kombu's default
# 1 s, twice per container). Tests stop hundreds of containers; a tenth of a second
# between checks changes nothing else.
from kombu.mixins import ConsumerMixin  # noqa: E402

ConsumerMixin.consume.__defaults__ = (None, None, 0.1)


@pytest.fixture(scope="session")
def infra():
    """A RabbitMQ node and a Mongo wire server of the test run's own."""
    from deploy.local import Broker, MongoWire, free_port, stop_idle_epmd
    base = Path(tempfile.mkdtemp(prefix="zhzx-test-"))
    broker = Broker(base / "rabbitmq", node=f"zhzx-test-{os.getpid()}@localhost",
                    amqp_port=free_port(), mgmt_port=free_port(), prom_port=free_port(),
                    dist_port=free_port(), cluster_name=f"zhzx-test-{os.getpid()}")
    mongo = MongoWire(base / "mongo", free_port())
    broker.start()
    try:
        mongo.start()
    except Exception:
        broker.stop()
        raise
    yield support.Infra(broker, mongo, base)
    mongo.stop()
    broker.stop()
    stop_idle_epmd()


@pytest.fixture
def config(infra):
    """A service config with its own vhost and database names."""
    name = f"t{uuid.uuid4().hex[:10]}"
    vhost = support.create_vhost(infra.broker, name)
    yield support.service_config(infra, prefix=f"{name}_", vhost=vhost)
    support.delete_vhost(infra.broker, vhost)


@pytest.fixture
def run_service(config):
    started = []

    def run(cls, conf=None):
        container = support.start_container(cls, conf or config)
        started.append(container)
        return container

    run.started = started
    yield run
    for container in reversed(started):
        container.stop()


@pytest.fixture
def probe(config):
    probes = []

    def make(exchange, routing_key="#"):
        p = support.EventProbe(config["AMQP_URI"], exchange, routing_key)
        probes.append(p)
        return p

    yield make
    for p in probes:
        p.close()
