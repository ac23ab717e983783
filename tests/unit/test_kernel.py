import uuid
from types import SimpleNamespace

import pytest

from services.common import auth, problems
from services.common.config import Identity, load_config
from services.common.envelope import make_event, validation_errors
from services.common.http import decode_cursor, encode_cursor, page
from services.common.messaging import backoff_ms
from services.common.observability import JsonFormatter, redact


def test_envelope_round_trip_and_rejections():
    event = make_event("member.appointed", origin="140428", aggregate_id="m1", seq=1,
                       payload={"a": 1}, actor="u", trace_id="t")
    assert validation_errors(event) == {}
    uuid.UUID(event["event_id"])
    assert event["occurred_at"].endswith("Z")
    bad = dict(event, seq=0, origin="14", extra=1)
    assert set(validation_errors(bad)) == {"seq", "origin", "extra"}
    assert validation_errors("nope") == {"_schema": ["envelope must be a JSON object"]}


def test_tokens_and_org_check():
    token = auth.issue_token("s" * 32, org="140428", roles=["admin", "unit:u1"], sub="x")
    principal = auth.authenticate(f"Bearer {token}", secret="s" * 32, org="140428")
    assert principal.is_admin and principal.ids("unit") == {"u1"}
    with pytest.raises(problems.Forbidden):
        auth.authenticate(f"Bearer {token}", secret="s" * 32, org="140400")
    with pytest.raises(problems.Unauthorized):
        auth.authenticate(f"Bearer {token}", secret="t" * 32, org="140428")
    with pytest.raises(problems.Unauthorized):
        auth.authenticate(None, secret="s" * 32, org="140428")
    expired = auth.issue_token("s" * 32, org="140428", roles=["admin"], ttl_seconds=1, now=1000)
    with pytest.raises(problems.Unauthorized, match="过期"):
        auth.authenticate(f"Bearer {expired}", secret="s" * 32, org="140428")
    with pytest.raises(ValueError):
        auth.issue_token("s" * 32, org="140428", roles=["root"])


def test_problem_bodies_flatten_nested_errors():
    err = problems.Invalid({"a": {"b": ["x"]}, "c": {0: ["y"]}, "d": ["z"]})
    body = err.to_dict("/p")
    assert body["status"] == 422 and body["instance"] == "/p"
    assert body["errors"] == {"a.b": ["x"], "c.0": ["y"], "d": ["z"]}
    assert problems.Conflict("c", current_state="s").to_dict()["current_state"] == "s"


def test_cursor_and_page():
    assert decode_cursor(encode_cursor("m中")) == "m中"
    with pytest.raises(problems.Invalid):
        decode_cursor("not-a-cursor")
    items = [{"id": str(i)} for i in range(4)]
    assert page(items, 3)["next_cursor"] == encode_cursor("2")
    assert page(items[:3], 3)["next_cursor"] is None


def test_backoff_grows_and_is_capped():
    assert [backoff_ms(a, 1000) for a in (1, 2, 3)] == [1000, 4000, 16000]
    assert backoff_ms(20, 1000) == 300_000


def test_logs_are_json_with_trace_and_redacted():
    import json
    import logging
    record = logging.LogRecord("x", logging.INFO, __file__, 1,
                               "called 13912345678 about 140428199003071235", (), None)
    record.trace_id = "t-1"
    line = json.loads(JsonFormatter(service="members").format(record))
    assert line["trace_id"] == "t-1" and line["service"] == "members"
    assert "13912345678" not in line["msg"] and "140428199003071235" not in line["msg"]
    assert redact("x13912345678") == "x[PHONE]"


def test_platform_config_and_identity(monkeypatch, tmp_path):
    from pathlib import Path
    monkeypatch.setenv("ORG_CODE", "140400")
    monkeypatch.setenv("ORG_LEVEL", "city")
    conf = load_config(Path(__file__).parents[2] / "deploy" / "config" / "platform.yaml")
    ident = Identity.from_config(conf)
    assert ident == Identity("140400", "city", "140400", "长子县")
    assert isinstance(conf["EVENT_MAX_ATTEMPTS"], int)
    with pytest.raises(ValueError):
        Identity.from_config({"ORG_CODE": "1404", "ORG_LEVEL": "county"})


def test_every_idempotent_handler_has_an_explicit_unique_inbox_key():
    """Inbox keys are names, not method names: renaming a handler never
    re-applies history, and its queue keeps its name too."""
    import inspect
    from nameko.containers import ServiceContainer
    from nameko.events import EventHandler

    from services.catalogue import SERVICES
    from importlib import import_module
    seen = {}
    for module, name in SERVICES:
        cls = getattr(import_module(module), name)
        for method_name, method in inspect.getmembers(cls, inspect.isfunction):
            key = getattr(method, "inbox_key", None)
            if key:
                full = key.format(service=cls.name)
                assert full not in seen, (full, seen.get(full), method_name)
                seen[full] = method_name
    from services.proposals.service import ProposalsService
    assert ProposalsService.on_proposal_referred.inbox_key == "proposals.on_proposal_forwarded"
    container = ServiceContainer(ProposalsService, {
        "AMQP_URI": "memory://", "ORG_CODE": "140400", "MONGO_URI": "mongodb://127.0.0.1:1"})
    handler = next(e for e in container.entrypoints if isinstance(e, EventHandler)
                   and e.method_name == "on_proposal_referred")
    assert handler.consumer_name() == "proposals.on_proposal_forwarded"
    with pytest.raises(TypeError):
        from services.common.inbox import idempotent
        idempotent(lambda self, event: None)


def test_exports_show_text_as_text_under_a_title_excel_accepts():
    """What people typed is shown, never run as a formula; a session name with
    characters a sheet title cannot have still exports."""
    import io

    import openpyxl

    from services.common.xlsx import workbook
    body = workbook([("2026年[一次]会议/提案", ["案由"], [['=HYPERLINK("http://x")'], ["好\x01"]])])
    sheet = openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]
    assert sheet.title == "2026年_一次_会议_提案"
    cells = [(c.value, c.data_type) for row in sheet.iter_rows(min_row=2) for c in row]
    assert cells == [('=HYPERLINK("http://x")', "s"), ("好", "s")]


def test_visibility_is_one_rule_for_lists_and_single_documents():
    """The list filter and the single-document check come from one declaration
    and agree on every document (checked by evaluating the filter here)."""
    from services.common.auth import Principal
    from services.common.decisions import See, Visibility
    from services.common.problems import Forbidden
    rule = Visibility("诉求", See("station", "station_id"), See("member", "members"),
                      See("sub", "filed_by", role="citizen"))
    docs = [{"station_id": "s1", "members": ["m1", "m2"], "filed_by": "c1"},
            {"station_id": "s2", "members": [], "filed_by": "c2"},
            {"station_id": "s3", "members": ["m2"], "filed_by": None}]

    def matches(query, doc):
        if query is None:
            return True
        if "$or" in query:
            return any(matches(q, doc) for q in query["$or"])
        (field, value), = query.items()
        held = doc.get(field)
        return value in held if isinstance(held, list) else held == value
    for roles, sub in [(("station:s1",), "x"), (("member:m2",), "x"), (("citizen",), "c2"),
                       (("station:s2", "member:m1"), "x"), (("admin",), "x")]:
        p = Principal(sub=sub, org="140428", roles=roles)
        assert [rule.allows(d, p) for d in docs] == [matches(rule.query(p), d) for d in docs]
    assert [rule.allows(d, Principal("c1", "140428", ("citizen",))) for d in docs] == \
        [True, False, False]
    with pytest.raises(Forbidden):
        rule.query(Principal("u", "140428", ("unit:u1",)))


class _Collection:
    """The two calls the command path makes, on documents in a dict."""

    def __init__(self, docs):
        self.docs = docs

    def find_one(self, query, projection=None):
        doc = self.docs.get(query["_id"])
        return dict(doc) if doc else None

    def update_one(self, query, update):
        doc = self.docs.get(query["_id"])
        matched = doc is not None and doc["seq"] == query["seq"]
        if matched:
            doc.update(update["$set"])

        class Result:
            matched_count = int(matched)
        return Result()


class _Service:
    """A service's command path on an in-memory database."""
    from services.common.commands import CommandPath as _Path
    command, commit = _Path.command, _Path.commit

    def __init__(self, docs):
        self.db = {"things": _Collection(docs)}

    def change(self, request=None, actor=None):
        from services.common.outbox import Change
        return Change(origin="140428", actor=actor)


def _count_decide(docs, calls):
    """Adds one to ``n``; on its first call another change lands first."""
    def decide(doc):
        calls.append(doc["seq"])
        if len(calls) == 1:
            docs["t1"].update(seq=docs["t1"]["seq"] + 1, n=docs["t1"]["n"] + 1)
        return {"n": doc["n"] + 1}, []
    return decide


def test_a_change_without_seq_is_decided_again_when_another_landed_in_between():
    from services.common.decisions import Aggregate
    docs = {"t1": {"_id": "t1", "seq": 1, "n": 0}}
    calls = []
    saved = _Service(docs).command(None, Aggregate("things", "事项"), "t1",
                                   _count_decide(docs, calls), actor="m1")
    assert calls == [1, 2]                 # decided on the new document
    assert saved["n"] == 2 and saved["seq"] == 2   # both changes kept


def test_a_change_with_seq_gets_409_when_another_landed_in_between():
    from services.common.decisions import Aggregate
    docs = {"t1": {"_id": "t1", "seq": 1, "n": 0}}
    calls = []
    with pytest.raises(problems.Conflict) as caught:
        _Service(docs).command(None, Aggregate("things", "事项"), "t1",
                               _count_decide(docs, calls), expected=1, actor="m1")
    assert caught.value.status == 409 and calls == [1]
    assert docs["t1"]["n"] == 1            # only the other change


def test_applied_is_the_document_as_the_store_keeps_it_after_a_change():
    from services.common.outbox import applied
    doc = {"_id": "p1", "seq": 3, "state": "cosigning", "cosigners": {"m1": "invited"},
           "deadlines": {"cosign": "2026-12-04"}, "_pending": 0}
    event = {"event_id": "e4", "seq": 4, "type": "proposal.cosign_confirmed"}
    after = applied(doc, {"state": "submitted", "cosigners.m1": "confirmed", "review.stage": "x"},
                    [event], unset=["deadlines.cosign", "absent.field"])
    assert after == {"_id": "p1", "seq": 4, "state": "submitted",
                     "cosigners": {"m1": "confirmed"}, "review": {"stage": "x"},
                     "deadlines": {}, "_pending": 1, "_outbox": {"e4": event}}
    assert doc["cosigners"] == {"m1": "invited"}          # the loaded one is left alone
    assert applied({"_id": "p1", "seq": 1, "tags": ["a"]}, {"tags.0": "b"}) is None  # read back


def test_a_relay_wakes_for_writes_to_its_own_collections_only():
    """Services may share a process: a write to one service's collection
    marks that collection for its relay, not every relay's collections."""
    from types import SimpleNamespace

    from services.common.outbox import Aggregates, OutboxRelay

    def relay(db, *names):
        r = OutboxRelay(*names)
        r._db, r._flushed_at = SimpleNamespace(name=db), {}
        for name in names:   # as after a flush
            r._flushed_at[name] = Aggregates.written[f"{db}.{name}"]
        return r

    proposals = relay("t_proposals", "proposals", "units")
    members = relay("t_members", "members", "meetings")
    store = Aggregates(FakeCollection("t_proposals.proposals"))
    store.create({"_id": "p1"}, [{"event_id": "e1", "seq": 1}])
    assert proposals._written() == ["proposals"]
    assert members._written() == []


class FakeCollection:
    """A collection's writes, each running ``during`` while it is under way."""

    def __init__(self, full_name, during=lambda: None):
        from bson.codec_options import DEFAULT_CODEC_OPTIONS
        self.full_name, self.during = full_name, during
        self.codec_options = DEFAULT_CODEC_OPTIONS

    def insert_one(self, doc):
        self.during()

    def insert_many(self, docs, ordered=True):
        self.during()

    def update_one(self, query, update):
        self.during()
        return SimpleNamespace(matched_count=1)


def test_a_write_under_way_while_the_relay_begins_a_flush_wakes_it_again():
    """Another worker's write woke the relay, which begins its flush while
    this worker's write is under way (its flush may read before the write
    lands): the write must still count as new to the relay afterwards, so
    that the worker's end wakes it again. Counted before the write, it
    waited for the relay's poll."""
    from services.common.outbox import Aggregates, OutboxRelay
    relay = OutboxRelay("proposals")
    relay._db, relay._flushed_at = SimpleNamespace(name="t_race"), {}
    relay._flushing()
    store = Aggregates(FakeCollection("t_race.proposals", during=relay._flushing))
    store.create({"_id": "p1"}, [{"event_id": "e1", "seq": 1}])
    assert relay._written() == ["proposals"]
    relay._flushing()
    store.change("p1", 1, {"state": "submitted"}, [{"event_id": "e2", "seq": 2}])
    assert relay._written() == ["proposals"]
    relay._flushing()
    store.create_many([({"_id": "p2"}, [{"event_id": "e3", "seq": 1}])])
    assert relay._written() == ["proposals"]
    relay._flushing()
    store.change("p1", 2, {"note": "x"}, [])   # no event: nothing to flush
    assert relay._written() == []


def test_a_rollup_written_in_its_own_thread_wakes_its_relay():
    """The roll-up writes its linked event from a duty's thread, not a
    worker: no worker's end wakes the relay, so the roll-up does (else the
    event waits for the relay's poll)."""
    import threading
    from zoneinfo import ZoneInfo

    from services.common import rollup
    from services.common.outbox import OutboxRelay
    relay = OutboxRelay("proposals", rollup.ROLLUPS)
    relay._db, relay._flushed_at, relay._wake = SimpleNamespace(name="t_roll"), {}, \
        threading.Event()
    relay._flushing()
    figures = rollup.StatisticsRollup("proposals", lambda db, year: {"submitted": 1})
    figures.container = SimpleNamespace(extensions=[figures, relay])
    figures.identity = SimpleNamespace(uplink="140400", org_code="140428", org_name="长子县")
    figures.zone = ZoneInfo("Asia/Shanghai")
    stored = FakeCollection(f"t_roll.{rollup.ROLLUPS}")
    stored.find_one = lambda *args, **kwargs: None
    figures._db = {rollup.ROLLUPS: stored}
    assert figures.roll(2026) is True
    assert relay._wake.is_set()
