"""Imports a 10,000-row roster into the members service and prints rows/s and
events/s (write to broker-confirmed publish), beside the raw broker publish
rate with confirms measured in the same run. Starts its own broker node and
Mongo wire server on free loopback ports; every loop is bounded.

    .venv/bin/python bench/import_roster.py [--rows 10000]
"""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pymongo  # noqa: E402
from kombu import Connection, Exchange, Producer, Queue  # noqa: E402

import services  # noqa: E402,F401
from bench.local_infra import local_infra  # noqa: E402
from deploy.demo_data import members as demo  # noqa: E402
from services.members.service import MembersService  # noqa: E402
from tests.support import Client, service_config, start_container  # noqa: E402


def raw_publish_rate(amqp_uri, count=5000, limit_s=60):
    exchange = Exchange("bench.raw", type="topic", durable=True)
    queue = Queue("bench.raw", exchange=exchange, routing_key="#", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        queue(channel).declare()
        producer = Producer(channel)
        body = {"payload": "x" * 400}
        started = time.perf_counter()
        sent = 0
        while sent < count and time.perf_counter() - started < limit_s:
            producer.publish(body, exchange=exchange, routing_key="bench", serializer="json",
                             delivery_mode=2, mandatory=True)
            sent += 1
        elapsed = time.perf_counter() - started
        queue(channel).delete()
    return sent / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with local_infra() as infra:
        run(infra, args)


def run(infra, args):
    container = None
    try:
        config = service_config(infra, prefix="bench_")
        config["OUTBOX_POLL_SECONDS"] = 0.2
        config["OUTBOX_MEASURE_SECONDS"] = 3600
        # no parent platform: only local events (the link: bench/link_lag.py)
        config["PARENT_ORG"] = ""
        container = start_container(MembersService, config)
        # a consumer queue, so events are routed (not parked as unrouted)
        with Connection(config["AMQP_URI"]) as conn:
            Queue("bench.members", exchange=Exchange("members.events", type="topic",
                                                     durable=True),
                  routing_key="#", durable=True)(conn.channel()).declare()
        raw = raw_publish_rate(config["AMQP_URI"])
        data = demo.roster_csv(demo.members(args.rows, seed=7))
        admin = Client(config, "admin")
        started = time.perf_counter()
        resp = admin.post("/api/v1/members/import", data=data,
                          headers={"Content-Type": "text/csv"})
        imported_at = time.perf_counter()
        report = resp.json()
        assert report["created"] == args.rows, report
        members = pymongo.MongoClient(config["MONGO_URI"])["bench_members"]["members"]
        deadline = time.monotonic() + 900
        while members.count_documents({"_pending": 1}) and time.monotonic() < deadline:
            time.sleep(0.5)
        published_at = time.perf_counter()
        with Connection(config["AMQP_URI"]) as conn:
            delivered = Queue("bench.members")(conn.channel()).queue_declare(
                passive=True).message_count
        print(f"rows imported:            {report['created']}")
        print(f"import (HTTP, stored):    {args.rows / (imported_at - started):8.1f} rows/s")
        print(f"events confirmed:         {delivered}")
        print(f"end to end (events out):  {delivered / (published_at - started):8.1f} events/s")
        print(f"raw broker publish, confirms, one by one: {raw:8.1f} msg/s")
    finally:
        if container is not None:
            container.stop()


if __name__ == "__main__":
    main()
