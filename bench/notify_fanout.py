"""A meeting notice to 2,000 members over the in-app inbox and e-mail (a local
SMTP server), then single notifications at a steady pace. Prints
notifications/s and e-mails/s for the fan-out, and p50/p99 event-to-inbox
latency. Starts its own broker node, Mongo wire server and SMTP server on free
loopback ports; every loop is bounded in count and time.

    .venv/bin/python bench/notify_fanout.py [--members 2000] [--singles 200]
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
from kombu import Connection, Exchange, Producer  # noqa: E402

import services  # noqa: E402,F401
from bench.local_infra import local_infra, percentile, wait  # noqa: E402
from services.common.envelope import make_event  # noqa: E402
from deploy.demo_data import members as demo  # noqa: E402
from services.members.service import MembersService  # noqa: E402
from services.notify.rules import notification_id  # noqa: E402
from services.notify.service import NotifyService  # noqa: E402
from tests.support import Client, service_config, start_container, with_port  # noqa: E402


def publish(amqp_uri, events):
    exchange = Exchange("members.events", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.channel())
        for event in events:
            producer.publish(event, exchange=exchange, routing_key=event["type"],
                             serializer="json", declare=[exchange], retry=True)


def notice(ids, n):
    return make_event("meeting.notice_due", origin="140428", aggregate_id=f"M{n}", seq=1,
                      payload={"meeting_id": f"M{n}", "kind": "plenary", "title": "全体委员会议",
                               "place": "县会议中心", "starts_at": "2030-06-17T09:00",
                               "ends_on": "2030-06-17", "term": "第十届", "year": 2030,
                               "invitees": ids, "days_ahead": 7})


def run(infra, args):
    config = service_config(infra, prefix="bench_")
    config["NOTIFY"] = dict(config["NOTIFY"], auto_dispatch=True, concurrency=50, smtp={
        "host": "127.0.0.1", "port": infra.mail.port, "sender": "noreply@zhzx.local"},
        defaults={"channels": {"default": ["inbox", "email"]}, "digest": False})
    members_conf = with_port(config)
    containers = [start_container(MembersService, members_conf),
                  start_container(NotifyService, config)]
    try:
        admin = Client(members_conf, "admin")
        report = admin.post("/api/v1/members/import", headers={"Content-Type": "text/csv"},
                            data=demo.roster_csv(demo.members(args.members, seed=3))).json()
        assert report["created"] == args.members, report
        db = pymongo.MongoClient(config["MONGO_URI"])["bench_notify"]
        ids = [m["_id"] for m in pymongo.MongoClient(config["MONGO_URI"])[
            "bench_members"]["members"].find({}, {"_id": 1})]

        started = time.perf_counter()
        publish(config["AMQP_URI"], [notice(ids, 1)])
        wait(lambda: db["notifications"].count_documents({}) >= len(ids), 600)
        inboxed = time.perf_counter()
        wait(lambda: db["deliveries"].count_documents({"state": "sent"}) >= len(ids), 900, 0.2)
        mailed = time.perf_counter()
        failed = db["deliveries"].count_documents({"state": "failed"})

        latencies = []
        rule = "request-dispatched"
        for i in range(args.singles):
            member = ids[i % len(ids)]
            event = make_event("request.dispatched", origin="140428", aggregate_id=f"RQ{i}",
                               seq=1, payload={"request_id": f"RQ{i}", "station_id": "s1",
                                               "state": "dispatched", "category": "appeal",
                                               "title": "路灯不亮", "member_id": member,
                                               "year": 2030})
            nid = notification_id(event["event_id"], rule, f"member:{member}")
            sent_at = time.perf_counter()
            exchange = Exchange("liaison.events", type="topic", durable=True)
            with Connection(config["AMQP_URI"]) as conn:
                Producer(conn.channel()).publish(event, exchange=exchange, declare=[exchange],
                                                 routing_key=event["type"], serializer="json")
            wait(lambda: db["notifications"].find_one({"_id": nid}, {"_id": 1}), 30, 0.005)
            latencies.append(time.perf_counter() - sent_at)
            time.sleep(max(0.0, 1 / args.rate - (time.perf_counter() - sent_at)))

        print(f"members notified:              {len(ids)}")
        print(f"fan-out into the inbox:        {len(ids) / (inboxed - started):8.1f} notifications/s")
        print(f"fan-out by e-mail (SMTP sent): {len(ids) / (mailed - started):8.1f} e-mails/s "
              f"({failed} failed)")
        print(f"single events at {args.rate}/s:        {len(latencies)}")
        print(f"event-to-inbox latency p50:    {percentile(latencies, 50) * 1000:8.1f} ms")
        print(f"event-to-inbox latency p99:    {percentile(latencies, 99) * 1000:8.1f} ms")
    finally:
        for container in reversed(containers):
            container.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    with local_infra(mail=True) as infra:
        run(infra, args)


if __name__ == "__main__":
    main()
