"""Outbox, inbox and dead letters against a real broker and Mongo wire server."""

import pymongo
import pytest
from kombu import Connection, Exchange, Producer, Queue
from nameko.dependency_providers import Config
from nameko.rpc import rpc

from deploy import cli
from services.common import dlq
from services.common.envelope import make_event
from services.common.inbox import idempotent
from services.common.messaging import event_handler
from services.common.mongo import Mongo
from services.members.service import MembersService
from tests.support import Client, wait_until
from tests.service.test_members_api import settled, valid_member

pytestmark = pytest.mark.service


class Ledger:
    """A consumer of ``members`` events whose effect is counted, and which fails
    while the ``fault`` document says so."""
    name = "ledger"
    db = Mongo()
    config = Config()

    @event_handler("members", "member.appointed")
    @idempotent("ledger.on_appointed")
    def on_appointed(self, event):
        if self.db.fault.find_one({"_id": "fault", "on": 1}):
            raise RuntimeError("ledger is broken")
        self.db.counts.update_one({"_id": event["aggregate_id"]}, {"$inc": {"n": 1}},
                                  upsert=True)

    @rpc
    def ping(self):
        return "pong"


def ledger_db(config):
    return pymongo.MongoClient(config["MONGO_URI"])[config["MONGO_DB_PREFIX"] + "ledger"]


def publish_raw(config, body, routing_key="member.appointed"):
    with Connection(config["AMQP_URI"]) as conn:
        producer = Producer(conn.channel())
        producer.publish(body, exchange=Exchange("members.events", type="topic", durable=True),
                         routing_key=routing_key, serializer="json", delivery_mode=2,
                         declare=[Exchange("members.events", type="topic", durable=True)])


def an_event(aggregate_id="m1"):
    return make_event("member.appointed", origin="140428", aggregate_id=aggregate_id, seq=1,
                      payload={"member": {"member_id": aggregate_id}})


def purge(config, name):
    with Connection(config["AMQP_URI"]) as conn:
        queue = dlq.KNOWN[name](conn.channel())
        queue.declare()
        queue.purge()


def dead_letters(config):
    return dlq.list_dead_letters(config["AMQP_URI"])


@pytest.fixture
def clean_dlq(config):
    purge(config, dlq.DLQ_NAME)
    yield
    purge(config, dlq.DLQ_NAME)


def test_broker_down_during_write_then_event_published_once(run_service, config, probe,
                                                            infra):
    events = probe("members.events")
    run_service(MembersService)
    admin = Client(config, "admin")
    infra.broker.stop_app()
    try:
        resp = admin.post("/api/v1/members", json=valid_member())
        assert resp.status_code == 201  # the write does not need the broker
        member_id = resp.json()["id"]
        assert not settled(config, member_id)  # the event waits in the outbox
    finally:
        infra.broker.start_app()
    wait_until(lambda: settled(config, member_id), timeout=60, what="outbox drained")
    received = events.wait_for(1, timeout=30)
    assert [(e["type"], e["aggregate_id"]) for e in received] == [
        ("member.appointed", member_id)]


def test_same_event_twice_is_applied_once(run_service, config):
    run_service(Ledger)
    event = an_event("dup-1")
    publish_raw(config, event)
    publish_raw(config, event)
    other = an_event("marker")
    publish_raw(config, other)  # the queue is FIFO: once this is applied, both were seen
    db = ledger_db(config)
    wait_until(lambda: db.counts.find_one({"_id": "marker"}), what="marker applied")
    wait_until(lambda: db.inbox.count_documents({"state": "done"}) == 2)
    assert db.counts.find_one({"_id": "dup-1"})["n"] == 1


def test_failing_handler_dead_letters_then_replay_applies(run_service, config, clean_dlq,
                                                         tmp_path, capsys):
    db = ledger_db(config)
    db.fault.insert_one({"_id": "fault", "on": 1})
    run_service(Ledger)
    event = an_event("poison-1")
    publish_raw(config, event)
    letters = wait_until(lambda: dead_letters(config), timeout=30, what="a dead letter")
    assert len(letters) == 1
    letter = letters[0]
    assert letter["event_id"] == event["event_id"]
    assert letter["attempts"] == 3  # EVENT_MAX_ATTEMPTS in the test config
    assert "ledger is broken" in letter["error"]
    assert letter["queue"] == "evt-members-member.appointed--ledger.on_appointed"
    assert letter["exchange"] == "members.events"
    assert letter["routing_key"] == "member.appointed"
    assert db.counts.find_one({"_id": "poison-1"}) is None
    # listing leaves the message where it is
    assert len(dead_letters(config)) == 1

    env = tmp_path / "platform.env"
    env.write_text(f"AMQP_URI={config['AMQP_URI']}\n")
    import os
    os.environ["ZHZX_PLATFORM_ENV"] = str(env)
    try:
        cli.main(["dlq", "list"])
        assert letter["id"] in capsys.readouterr().out
        db.fault.update_one({"_id": "fault"}, {"$set": {"on": 0}})  # the fault is fixed
        cli.main(["dlq", "replay", letter["id"]])
        assert "replayed" in capsys.readouterr().out
    finally:
        del os.environ["ZHZX_PLATFORM_ENV"]
    wait_until(lambda: db.counts.find_one({"_id": "poison-1"}), timeout=30,
               what="replayed event applied")
    assert dead_letters(config) == []
    assert db.counts.find_one({"_id": "poison-1"})["n"] == 1


def test_invalid_envelope_goes_straight_to_dead_letters(run_service, config, clean_dlq):
    run_service(Ledger)
    publish_raw(config, {"type": "member.appointed", "payload": "not an envelope"})
    letters = wait_until(lambda: dead_letters(config), timeout=30, what="a dead letter")
    assert len(letters) == 1 and "invalid envelope" in letters[0]["error"]
    assert letters[0]["attempts"] == 0


def test_event_with_no_consumer_is_parked_not_lost(run_service, config):
    purge(config, dlq.UNROUTED_QUEUE)
    run_service(MembersService)
    member_id = Client(config, "admin").post("/api/v1/members", json=valid_member()).json()["id"]
    wait_until(lambda: settled(config, member_id))
    parked = dlq.list_dead_letters(config["AMQP_URI"], queue=dlq.UNROUTED_QUEUE)
    assert [(p["type"], p["routing_key"]) for p in parked] == [
        ("member.appointed", "member.appointed")]
    # replaying it once a consumer is bound delivers it
    run_service(Ledger)
    dlq.replay(config["AMQP_URI"], parked[0]["id"], queue=dlq.UNROUTED_QUEUE)
    db = ledger_db(config)
    wait_until(lambda: db.counts.find_one({"_id": member_id}), what="parked event applied")


class SlowLedger(Ledger):
    """The ledger whose effect takes longer than an inbox lease."""
    name = "ledger"

    @event_handler("members", "member.appointed")
    @idempotent("ledger.on_appointed")
    def on_appointed(self, event):
        import eventlet
        if self.db.fault.find_one({"_id": "slow", "on": 1}):
            eventlet.sleep(3 * float(self.config["INBOX_LEASE_SECONDS"]))  # a long effect
        self.db.counts.update_one({"_id": event["aggregate_id"]}, {"$inc": {"n": 1}},
                                  upsert=True)


def test_a_claim_left_by_a_killed_consumer_is_taken_over_after_its_lease(
        run_service, config, clean_dlq):
    """A process killed mid-effect leaves a pending claim that nobody renews:
    the next delivery waits quietly (not as a failed attempt) and applies the
    event once the lease has run out."""
    conf = dict(config, INBOX_LEASE_SECONDS=2)
    event = an_event("orphaned-1")
    db = ledger_db(conf)
    import time
    db.inbox.insert_one({"_id": f"ledger.on_appointed:{event['event_id']}",
                         "state": "pending", "at": time.time(), "holder": "killed"})
    run_service(Ledger, conf)
    publish_raw(conf, event)
    # the claim is marked done just after the effect: wait for that, the end state
    wait_until(lambda: db.inbox.find_one(
        {"_id": f"ledger.on_appointed:{event['event_id']}", "state": "done"}), timeout=30,
        what="the orphaned claim taken over and done")
    assert db.counts.find_one({"_id": "orphaned-1"})["n"] == 1
    assert dead_letters(conf) == []   # waiting for a lease is not a failed attempt


def test_a_running_effect_keeps_its_claim_beyond_one_lease(run_service, config, clean_dlq):
    """The lease is renewed while the effect runs: a second delivery of the
    same event meanwhile is held off and then ignored as a duplicate."""
    from services.common.observability import EVENTS_CONSUMED
    duplicates = EVENTS_CONSUMED.labels("ledger", "member.appointed", "duplicate")
    before = duplicates._value.get()
    conf = dict(config, INBOX_LEASE_SECONDS=1)
    db = ledger_db(conf)
    db.fault.insert_one({"_id": "slow", "on": 1})
    run_service(SlowLedger, conf)
    event = an_event("slow-1")
    publish_raw(conf, event)
    wait_until(lambda: db.inbox.find_one({"state": "pending"}), what="the effect running")
    publish_raw(conf, event)   # redelivered while the first is still at work
    wait_until(lambda: db.inbox.find_one(
        {"_id": f"ledger.on_appointed:{event['event_id']}", "state": "done"}), timeout=30,
        what="the effect done")
    # the held copy is retried and finds the claim done: ignored, applied once
    wait_until(lambda: duplicates._value.get() == before + 1, timeout=30,
               what="the second delivery ignored as a duplicate")
    assert db.counts.find_one({"_id": "slow-1"})["n"] == 1
    assert dead_letters(conf) == []


def test_database_down_answers_503_with_retry_after_and_recovers(run_service, config,
                                                                  tmp_path):
    """The service's own Mongo wire server killed: every API call is a 503
    problem with Retry-After (not a 500), readiness names the database,
    nothing is half-written, and the service answers again once it is back."""
    import os
    import signal
    from deploy.local import MongoWire, free_port, read_pid
    mongo = MongoWire(tmp_path / "mongo", free_port())
    mongo.start()
    try:
        conf = dict(config, MONGO_URI=mongo.uri)
        run_service(MembersService, conf)
        admin = Client(conf, "admin")
        assert admin.get("/api/v1/members").status_code == 200
        os.killpg(read_pid(mongo.pid_file), signal.SIGKILL)
        wait_until(lambda: not mongo.running(), what="the database gone")
        for _ in range(3):
            resp = admin.get("/api/v1/members")
            assert resp.status_code == 503, resp.text
            assert resp.headers["Content-Type"] == "application/problem+json"
            assert int(resp.headers["Retry-After"]) > 0
            assert resp.json()["unavailable"] == ["database"]
        written = admin.post("/api/v1/members", json=valid_member())
        assert written.status_code == 503 and "Retry-After" in written.headers
        ready = Client(conf).get("/readyz")
        assert ready.status_code == 503 and "database" in ready.json()["unavailable"]
        assert Client(conf).get("/healthz").status_code == 200   # alive, not ready
        mongo.start()
        wait_until(lambda: admin.get("/api/v1/members").status_code == 200, timeout=30,
                   what="the service answering again")
        assert admin.get("/api/v1/members").json()["items"] == []   # nothing half-written
        assert Client(conf).get("/readyz").status_code == 200
    finally:
        mongo.stop()


def test_readiness_names_a_missing_rpc_dependency(run_service, config):
    from services.proposals.service import ProposalsService
    from tests.support import with_port
    run_service(ProposalsService, config)
    ready = Client(config).get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["unavailable"] == ["service:members"]
    run_service(MembersService, with_port(config))
    wait_until(lambda: Client(config).get("/readyz").status_code == 200, timeout=30,
               what="ready once members runs")


def test_a_duplicate_is_counted_wherever_the_inbox_is_used(config):
    """Consumers that call the inbox directly (notify, the 履职档案) count an
    ignored duplicate like `@idempotent` handlers do."""
    from services.common.inbox import DUPLICATE, Inbox
    from services.common.observability import EVENTS_CONSUMED
    db = pymongo.MongoClient(config["MONGO_URI"])[config["MONGO_DB_PREFIX"] + "notify"]
    counter = EVENTS_CONSUMED.labels("notify", "opinion.submitted", "duplicate")
    before = counter._value.get()
    applied = []
    inbox = Inbox(db)
    first = inbox.run("notify.take", "e-1", lambda: applied.append(1), "opinion.submitted")
    second = inbox.run("notify.take", "e-1", lambda: applied.append(2), "opinion.submitted")
    assert applied == [1] and first is None and second is DUPLICATE
    assert counter._value.get() == before + 1


def import_while_relay_held(run_service, config, queue, count, seed):
    """Members imports ``count`` members while another holder keeps its
    relay's lease (nothing is published until ``release_relay``), ``queue``
    declared first. Returns the config and the members database."""
    from deploy.demo_data import members as demo
    conf = dict(config, PARENT_ORG="")   # local events only
    members = pymongo.MongoClient(conf["MONGO_URI"])[conf["MONGO_DB_PREFIX"] + "members"]
    members.leases.insert_one({"_id": "outbox", "holder": "test", "token": 1,
                               "expires_at": "9999-01-01T00:00:00.000"})
    with Connection(conf["AMQP_URI"]) as conn:
        queue(conn.channel()).declare()
    run_service(MembersService, conf)
    resp = Client(conf, "admin").post(
        "/api/v1/members/import", data=demo.roster_csv(demo.members(count, seed=seed)),
        headers={"Content-Type": "text/csv"})
    assert resp.json()["created"] == count
    return conf, members


def outbox_events(members):
    return {e["event_id"] for doc in members.members.find({"_pending": 1}, {"_outbox": 1})
            for e in (doc.get("_outbox") or {}).values()}


def release_relay(members):
    members.leases.update_one({"_id": "outbox"},
                              {"$set": {"expires_at": "1970-01-01T00:00:00.000"}})


def test_a_batch_the_broker_partly_refuses_republishes_only_the_refused(run_service, config):
    """The relay publishes a batch and awaits its confirms together. A queue
    full with ``reject-publish`` makes the broker nack part of the batch: only
    the nacked events stay in the outbox, and only they are published again
    once there is room."""
    exchange = Exchange("members.events", type="topic", durable=True)
    full = Queue("test.full", exchange=exchange, routing_key="#", durable=True,
                 queue_arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
    conf, members = import_while_relay_held(run_service, config, full, 5, seed=11)

    def outbox():
        return outbox_events(members)

    def in_queue(conn):
        return full(conn.channel()).queue_declare(passive=True).message_count

    every = outbox()
    assert len(every) == 5
    release_relay(members)
    with Connection(conf["AMQP_URI"]) as conn:
        wait_until(lambda: in_queue(conn) == 3 and len(outbox()) == 2, timeout=30,
                   what="three confirmed, two refused")
        first = set()
        channel = conn.channel()
        for _ in range(3):
            message = full(channel).get()
            first.add(message.properties["message_id"])
            message.ack()
        refused = outbox()
        assert first | refused == every and not first & refused   # settled only the confirmed
        # now there is room: the relay publishes again what was refused, and only that
        wait_until(lambda: not outbox(), timeout=60, what="the refused published again")
        assert in_queue(conn) == 2
        again = set()
        for _ in range(2):
            message = full(channel).get()
            again.add(message.properties["message_id"])
            message.ack()
        assert again == refused


def test_a_backlog_larger_than_a_batch_goes_out_once_in_batches(run_service, config):
    """A backlog of more than one batch (200 documents) is read by id in
    batches and published once, every event of it."""
    queue = Queue("test.backlog", exchange=Exchange("members.events", type="topic",
                                                   durable=True),
                  routing_key="member.#", durable=True)
    conf, members = import_while_relay_held(run_service, config, queue, 450, seed=12)
    pending = outbox_events(members)
    assert len(pending) == 450
    release_relay(members)
    wait_until(lambda: members.members.count_documents({"_pending": 1}) == 0, timeout=60,
               what="the backlog published")
    received = []
    with Connection(conf["AMQP_URI"]) as conn:
        channel = conn.channel()
        for _ in range(451):
            message = queue(channel).get(no_ack=True)
            if message is None:
                break
            received.append(message.properties["message_id"])
    assert sorted(received) == sorted(pending)


def test_events_waiting_for_a_link_are_set_aside_then_sent_once_it_routes(run_service, config):
    """A county's roster events for its city wait while no link routes them:
    the document is marked as waiting for a link (``_pending: 2``), so the
    relay does not re-read it after every write, and goes out once a route
    exists."""
    run_service(MembersService)
    member_id = Client(config, "admin").post("/api/v1/members", json=valid_member()).json()["id"]
    members = pymongo.MongoClient(config["MONGO_URI"])[config["MONGO_DB_PREFIX"] + "members"]
    waiting = wait_until(lambda: (lambda d: d if d.get("_pending") == 2 else None)(
        members.members.find_one({"_id": member_id})), what="set aside for the link")
    linked = list(waiting["_outbox"].values())
    assert linked and all(e["link"]["to"] == config["PARENT_ORG"] for e in linked)
    # the city's side of a link: a binding for this county's events to it
    up = Exchange("zhzx.up", type="topic", durable=True)
    city = Queue("test.city", exchange=up, routing_key=f"{config['PARENT_ORG']}.#",
                 durable=True)
    with Connection(config["AMQP_URI"]) as conn:
        city(conn.channel()).declare()
        wait_until(lambda: members.members.find_one({"_id": member_id})["_pending"] == 0,
                   timeout=90, what="sent once the link routes")
        got = [city(conn.channel()).get(no_ack=True) for _ in range(len(linked))]
        assert sorted(m.properties["message_id"] for m in got if m) == sorted(
            e["event_id"] for e in linked)
        assert city(conn.channel()).get() is None      # each once
