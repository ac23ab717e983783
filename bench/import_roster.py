"""The outbox relay's throughput, beside raw confirmed publishing on the same
broker in the same run.

Imports a 10,000-row roster into the members service while another holder
keeps the relay's lease (so nothing is published during the import), then
lets the lease go and times the relay alone: pending outbox → broker
confirmed, until every event sits in a bound queue. Prints that beside two
baselines measured on the same broker just before: raw kombu publishing with
one confirm per message, and raw publishing of batches whose confirms are
awaited together (the broker's ceiling for one channel). Starts its own broker
node and Mongo wire server on free loopback ports; every loop is bounded.

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
from bench.local_infra import local_infra, wait  # noqa: E402
from deploy.demo_data import members as demo  # noqa: E402
from services.members.service import MembersService  # noqa: E402
from tests.support import Client, service_config, start_container  # noqa: E402

BODY = {"payload": "x" * 400}


def raw_one_by_one(amqp_uri, count=5000, limit_s=60):
    """Raw kombu publishing, waiting for each message's confirm."""
    exchange = Exchange("bench.raw", type="topic", durable=True)
    queue = Queue("bench.raw", exchange=exchange, routing_key="#", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        queue(channel).declare()
        producer = Producer(channel)
        started = time.perf_counter()
        sent = 0
        while sent < count and time.perf_counter() - started < limit_s:
            producer.publish(BODY, exchange=exchange, routing_key="bench", serializer="json",
                             delivery_mode=2, mandatory=True)
            sent += 1
        elapsed = time.perf_counter() - started
        queue(channel).delete()
    return sent / elapsed


def raw_batched(amqp_uri, count=20000, batch=200, limit_s=60):
    """Raw kombu publishing in batches, each batch's confirms awaited together."""
    exchange = Exchange("bench.raw", type="topic", durable=True)
    queue = Queue("bench.raw", exchange=exchange, routing_key="#", durable=True)
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        queue(channel).declare()
        channel.confirm_select()
        acked = [0]
        channel.events["basic_ack"].add(lambda tag, multiple: acked.__setitem__(0, tag))
        producer = Producer(channel)
        started = time.perf_counter()
        sent = 0
        while sent < count and time.perf_counter() - started < limit_s:
            for _ in range(batch):
                producer.publish(BODY, exchange=exchange, routing_key="bench",
                                 serializer="json", delivery_mode=2, mandatory=True)
                sent += 1
            while acked[0] < sent:
                conn.drain_events(timeout=10)
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
        config["LEASE_SECONDS"] = 3600
        # no parent platform: only local events (the link: bench/link_lag.py)
        config["PARENT_ORG"] = ""
        db = pymongo.MongoClient(config["MONGO_URI"])["bench_members"]
        # another holder keeps the relay's lease through the import
        db["leases"].insert_one({"_id": "outbox", "holder": "bench", "token": 1,
                                 "expires_at": "9999-01-01T00:00:00.000"})
        container = start_container(MembersService, config)
        # a consumer queue, so events are routed (not parked as unrouted)
        with Connection(config["AMQP_URI"]) as conn:
            Queue("bench.members", exchange=Exchange("members.events", type="topic",
                                                     durable=True),
                  routing_key="#", durable=True)(conn.channel()).declare()
        one_by_one = raw_one_by_one(config["AMQP_URI"])
        batched = raw_batched(config["AMQP_URI"])
        data = demo.roster_csv(demo.members(args.rows, seed=7))
        admin = Client(config, "admin")
        started = time.perf_counter()
        resp = admin.post("/api/v1/members/import", data=data,
                          headers={"Content-Type": "text/csv"})
        imported = time.perf_counter() - started
        report = resp.json()
        assert report["created"] == args.rows, report
        with Connection(config["AMQP_URI"]) as conn:
            def delivered():
                return Queue("bench.members")(conn.channel()).queue_declare(
                    passive=True).message_count
            assert delivered() == 0, "the relay published during the import"
            db["leases"].update_one({"_id": "outbox"},
                                    {"$set": {"expires_at": "1970-01-01T00:00:00.000"}})
            released = time.perf_counter()
            wait(lambda: delivered() >= args.rows, limit_s=900, every=0.02)
            relay = args.rows / (time.perf_counter() - released)
            count = delivered()
        print(f"rows imported:        {report['created']} at {args.rows / imported:.1f} rows/s "
              f"(HTTP, stored with their events in the outbox)")
        print(f"events in the queue:  {count}")
        print(f"relay alone:          {relay:8.1f} events/s  (outbox → broker, confirmed)")
        print(f"raw, one confirm per message:      {one_by_one:8.1f} msg/s  "
              f"(relay = {relay / one_by_one:.0%} of it)")
        print(f"raw, batches of 200 confirmed together: {batched:8.1f} msg/s  "
              f"(relay = {relay / batched:.0%} of it)")
    finally:
        if container is not None:
            container.stop()


if __name__ == "__main__":
    main()
