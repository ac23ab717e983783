"""County → city linked-event lag over RabbitMQ federation, and catch-up after
a backlog. Starts two broker nodes (county and city, linked by ``zhzx link``'s
code) and a Mongo wire server on free loopback ports, a county service whose
HTTP endpoint stores an aggregate with a linked event (outbox → relay →
``zhzx.up`` → federation) and a city service consuming it with the kernel's
linked handler and inbox. Prints:

- linked-event lag p50/p99 at ``--rate`` events/s for ``--seconds``
  (request received at the county → handled at the city);
- the raw federation hop in the same run (publish on the county broker →
  consumer on the city broker, no services);
- the catch-up rate after ``--backlog`` linked events were buffered while the
  city broker was down (published straight to the county's ``zhzx.up``):
  events/s handled at the city once it is back.

Every loop is bounded in count and time.

    .venv/bin/python bench/link_lag.py [--rate 100] [--seconds 60] [--backlog 50000]
"""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from kombu import Connection, Exchange, Producer, Queue  # noqa: E402

import services  # noqa: E402,F401
from bench.local_infra import percentile, wait  # noqa: E402
from deploy.local import Broker, MongoWire, free_port  # noqa: E402
from services.common import federation, linkage  # noqa: E402
from services.common import service as platform  # noqa: E402
from services.common.envelope import make_event  # noqa: E402
from services.common.http import api, json_body  # noqa: E402
from services.common.inbox import idempotent  # noqa: E402
from services.common.mongo import Mongo  # noqa: E402
from services.common.outbox import Aggregates, OutboxRelay  # noqa: E402
from services.common.signing import Signer  # noqa: E402
from marshmallow import fields  # noqa: E402
from services.common.events import Payload, Registry  # noqa: E402


class Ping(Payload):
    sent = fields.Float(required=True)
    phase = fields.String(required=True)


# the benchmark's own linked event, declared like every event (services/common/events.py)
EVENTS = Registry("bench")
EVENTS.define("bench.ping", Ping, "the link benchmark's probe", aggregate="ping",
              via=linkage.UP)
from tests.support import service_config, start_container, trust_each_other  # noqa: E402

COUNTY, CITY = "140428", "140400"
HANDLED = {"steady": [], "backlog": []}   # lags (s) seen by the city's handler
BACKLOG_SEEN = []                          # when each backlog event was handled


class LagSource(platform.PlatformService):
    """County side: each request stores a ping with its linked event."""
    name = "lagsource"
    db = Mongo(indexes={"pings": [([("_pending", 1)], {})]})
    outbox = OutboxRelay("pings")

    @api("POST", "/api/v1/pings", public=True)
    def ping(self, request):
        sent = json_body(request)["sent"]
        ping_id = uuid.uuid4().hex
        Aggregates(self.db["pings"]).create({"_id": ping_id}, self.change(actor="bench").batch(
            ping_id, 0, [], [("bench.ping", {"sent": sent, "phase": "steady"}, CITY,
                              linkage.UP)]))
        return 201, {"id": ping_id}


class LagSink(platform.PlatformService):
    """City side: the kernel's linked handler with the inbox."""
    name = "lagsink"
    db = Mongo(indexes={})

    @linkage.linked_handler(linkage.UP, "bench.ping")
    @idempotent("city.on_ping")
    def on_ping(self, event):
        p = event["payload"]
        now = time.time()
        HANDLED[p["phase"]].append(now - p["sent"])
        if p["phase"] == "backlog":
            BACKLOG_SEEN.append(now)


def paced(rate, seconds, action):
    """Calls ``action()`` ``rate`` times a second for ``seconds``, each in its
    own green thread (a slow call does not slow the pace)."""
    pool = eventlet.GreenPool(200)
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pool.spawn_n(action)
    pool.waitall()


def raw_hop(county, city, rate, seconds):
    """Latencies of plain messages over the federation link, no services."""
    up = Exchange(linkage.UP, type="topic", durable=True)
    lags = []
    with Connection(city.amqp_uri) as consumer_conn, Connection(county.amqp_uri) as pub_conn:
        queue = Queue(f"bench-raw-{uuid.uuid4().hex[:8]}", exchange=up,
                      routing_key=f"{CITY}.bench.raw", auto_delete=True)
        producer = Producer(pub_conn.channel())

        def on_message(body, message):
            if body.get("measure"):
                lags.append(time.time() - body["sent"])
            message.ack()

        with consumer_conn.Consumer(queue, callbacks=[on_message]):
            def send(measure):
                producer.publish({"sent": time.time(), "measure": measure}, exchange=up,
                                 routing_key=f"{CITY}.bench.raw", serializer="json",
                                 declare=[up])

            # the binding reaches the county broker asynchronously: probe first
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                send(False)
                try:
                    consumer_conn.drain_events(timeout=0.5)
                    break
                except TimeoutError:
                    continue
                except OSError:
                    continue
            expected = int(rate * seconds)
            start = time.monotonic()
            for i in range(expected):
                delay = start + i / rate - time.monotonic()
                while delay > 0:
                    try:
                        consumer_conn.drain_events(timeout=delay)
                    except (TimeoutError, OSError):
                        pass
                    delay = start + i / rate - time.monotonic()
                send(True)
            deadline = time.monotonic() + 30
            while len(lags) < expected and time.monotonic() < deadline:
                try:
                    consumer_conn.drain_events(timeout=0.5)
                except (TimeoutError, OSError):
                    pass
    return lags


def run(args):
    base = Path(tempfile.mkdtemp(prefix="zhzx-bench-link-"))
    county = Broker(base / "county", node=f"zhzx-bench-c{free_port()}@localhost",
                    amqp_port=free_port(), mgmt_port=free_port(), prom_port=free_port(),
                    dist_port=free_port(), cluster_name="zhzx-bench-140428")
    city = Broker(base / "city", node=f"zhzx-bench-s{free_port()}@localhost",
                  amqp_port=free_port(), mgmt_port=free_port(), prom_port=free_port(),
                  dist_port=free_port(), cluster_name="zhzx-bench-140400")
    mongo = MongoWire(base / "mongo", free_port())
    started, containers = [], []
    try:
        for part in (county, city, mongo):
            part.start()
            started.append(part)
        refs = [federation.BrokerRef(b.mgmt_url, "127.0.0.1", b.amqp_port, b.admin)
                for b in (county, city)]
        federation.link(*refs, county_org=COUNTY, city_org=CITY)
        wait(lambda: all(s["state"] == "running" for s in federation.status(*refs)), 60)

        class Side:
            def __init__(self, broker):
                self.amqp_uri, self.mongo_uri = broker.amqp_uri, mongo.uri
                self.base = base
        county_conf = dict(service_config(Side(county), prefix="benchc_"),
                           OUTBOX_POLL_SECONDS=2)
        city_conf = dict(service_config(Side(city), prefix="benchs_"), ORG_CODE=CITY,
                         ORG_NAME="长治市", ORG_LEVEL="city", PARENT_ORG="140000",
                         CHILD_ORGS=f"{COUNTY}=长子县", max_workers=20)
        trust_each_other(county_conf, city_conf)
        signer = Signer(county_conf["LINK_SIGNING_KEY"])
        containers.append(start_container(LagSink, city_conf))
        containers.append(start_container(LagSource, county_conf))
        url = f"http://{county_conf['WEB_SERVER_ADDRESS']}/api/v1/pings"
        session_errors = []

        def post():
            try:
                resp = requests.post(url, json={"sent": time.time()}, timeout=30)
                if resp.status_code != 201:
                    session_errors.append(resp.status_code)
            except requests.RequestException as exc:
                session_errors.append(type(exc).__name__)

        post()   # the first one waits for the city's binding to reach the county
        wait(lambda: HANDLED["steady"], 60)
        HANDLED["steady"].clear()
        expected = int(args.rate * args.seconds)
        paced(args.rate, args.seconds, post)
        wait(lambda: len(HANDLED["steady"]) >= expected - len(session_errors), 120)
        steady = list(HANDLED["steady"])

        raw = raw_hop(county, city, args.rate, args.seconds)

        # backlog: the city broker down while the county's zhzx.up keeps taking
        city.stop_app()
        up = Exchange(linkage.UP, type="topic", durable=True)
        built = time.monotonic()
        with Connection(county.amqp_uri) as conn:
            producer = Producer(conn.channel(), exchange=up)
            for i in range(args.backlog):
                event = make_event("bench.ping", origin=COUNTY, aggregate_id=f"B{i}", seq=1,
                                   payload={"sent": time.time(), "phase": "backlog"})
                producer.publish(event, routing_key=f"{CITY}.bench.ping", serializer="json",
                                 headers=signer.headers(CITY, event),   # as the relay signs
                                 declare=[up] if i == 0 else [])
        built = time.monotonic() - built
        restored = time.monotonic()
        city.start_app()
        wait(lambda: len(HANDLED["backlog"]) >= args.backlog, args.limit, 0.2)
        caught_up = time.monotonic() - restored

        print(f"linked events at {args.rate:g}/s for {args.seconds:g} s: {len(steady)} handled "
              f"at the city, {len(session_errors)} requests failed")
        print(f"  linked-event lag p50:        {percentile(steady, 50) * 1000:8.1f} ms")
        print(f"  linked-event lag p99:        {percentile(steady, 99) * 1000:8.1f} ms")
        print(f"  raw federation hop p50:      {percentile(raw, 50) * 1000:8.1f} ms "
              f"({len(raw)} messages)")
        print(f"  raw federation hop p99:      {percentile(raw, 99) * 1000:8.1f} ms")
        print(f"backlog of {args.backlog} buffered in {built:.1f} s while the city was down")
        first, last = min(BACKLOG_SEEN), max(BACKLOG_SEEN)
        print(f"  caught up in {caught_up:.1f} s after the city broker was started again "
              f"(its start and the consumers' reconnect included): "
              f"{args.backlog / caught_up:.1f} events/s")
        print(f"  draining once flowing:       {(args.backlog - 1) / max(last - first, 1e-9):8.1f} "
              f"events/s (first to last handled)")
    finally:
        for container in reversed(containers):
            container.kill()
        for part in reversed(started):
            part.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backlog", type=int, default=50000)
    parser.add_argument("--limit", type=float, default=1800.0,
                        help="seconds allowed for the catch-up")
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
