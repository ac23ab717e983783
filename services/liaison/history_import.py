"""Import of past liaison work (requests, consultations, 社情民意) by replaying
each record's actions, with their dates and actors, through the same rules as
the HTTP API. Each record is all-or-nothing; a ``ref`` already imported is
skipped, so an import can be repeated. Pure.

A record::

    {"kind": "request" | "consultation" | "opinion", "ref": "2026-0001",
     "at": "2026-03-02T09:30", "as": ["station:st1"], "data": {...},
     "actions": [{"action": "dispatch", "at": "...", "as": [...], "data": {...}}]}
"""
from datetime import datetime

from services.common.auth import Principal
from services.common.problems import Invalid, Problem

from . import citizen, consult, opinions
from .schemas import (CONSULTATION_ACTIONS, OPINION_ACTIONS, REQUEST_ACTIONS,
                      consultation_in, opinion_in, request_in)

PREFIX = {"request": "RQ", "consultation": "CS", "opinion": "OP"}
COLLECTION = {"request": "requests", "consultation": "consultations", "opinion": "opinions"}


def record_id(kind, ref):
    return f"{PREFIX[kind]}-{ref}"


class Context:
    """What the replay needs from the platform, looked up once by the service."""

    def __init__(self, *, org, own_level, parent_org, orgs, rules, stations, members,
                 next_issue):
        self.org, self.own_level, self.parent_org, self.orgs = org, own_level, parent_org, orgs
        self.rules, self.stations, self.members = rules, stations, members
        self.next_issue = next_issue


def _actor(entry, org):
    return Principal(sub=entry.get("sub") or "import", org=org,
                     roles=tuple(entry.get("as") or ("admin",)))


def _new(kind, rec, ctx, at):
    actor = _actor(rec, ctx.org)
    doc_id = record_id(kind, rec["ref"])
    if kind == "request":
        data = request_in.load_or_raise(rec["data"])
        station = ctx.stations.get(data["station_id"])
        if station is None:
            raise _invalid("station_id", "站点不存在")
        return citizen.new_request(data, actor, request_id=doc_id, station=station,
                                   org=ctx.org, now=at, rules=ctx.rules)
    if kind == "consultation":
        data = consultation_in.load_or_raise(rec["data"])
        return consult.new_consultation(
            data, actor, consultation_id=doc_id, org=ctx.org,
            station=ctx.stations.get(data.get("station_id")), members_found=ctx.members,
            today=at.date(), imported=True)
    data = opinion_in.load_or_raise(rec["data"])
    return opinions.new_opinion(data, actor, opinion_id=doc_id, org=ctx.org, today=at.date(),
                                members_found=ctx.members,
                                station=ctx.stations.get(data.get("station_id")))


def _act(kind, doc, entry, ctx, at, n):
    actor = _actor(entry, ctx.org)
    action = entry["action"]
    if kind == "request":
        data = REQUEST_ACTIONS[action].load_or_raise(entry.get("data") or {})
        data.pop("seq", None)
        if action == "escalate":
            data["target_id"] = entry["target_id"]
        return citizen.act(doc, action, data, actor, now=at, rules=ctx.rules,
                           member_active=data.get("member_id") in ctx.members)
    if kind == "consultation":
        data = CONSULTATION_ACTIONS[action].load_or_raise(entry.get("data") or {})
        data.pop("seq", None)
        followup_id = data.pop("followup_id", None) or (
            f"F{len(doc['followups']) + 1}" if action == "add_followup" else None)
        return consult.act(doc, action, data, actor, today=at.date(), followup_id=followup_id,
                           members_found=ctx.members)
    data = OPINION_ACTIONS[action].load_or_raise(entry.get("data") or {})
    data.pop("seq", None)
    issue_no = data.pop("issue_no", None)
    if action == "issue" and issue_no is None:
        issue_no = ctx.next_issue(at.year)
    return opinions.act(doc, action, data, actor, today=at.date(), own_level=ctx.own_level,
                        parent_org=ctx.parent_org, orgs=ctx.orgs, issue_no=issue_no,
                        instruction_id=f"IN-{doc['_id']}-{n}")


def _invalid(field, message):
    return Invalid({field: [message]})


def replay_one(rec, ctx):
    """(document, [(event type, payload)]) for one record, or a Problem."""
    kind = rec["kind"]
    doc, events = _new(kind, rec, ctx, datetime.fromisoformat(rec["at"]))
    events = list(events)
    for n, entry in enumerate(rec.get("actions") or (), start=1):
        flow = {"request": citizen.FLOW, "consultation": consult.FLOW,
                "opinion": opinions.FLOW}[kind]
        if entry["action"] not in flow.steps:
            raise _invalid("action", f"未知的操作 {entry['action']}")
        fields, more = _act(kind, doc, entry, ctx, datetime.fromisoformat(entry["at"]), n)
        doc = dict(doc, **fields)
        events += more
    return doc, events


def replay(records, ctx, exists):
    """Documents with their events, and a report (imported, skipped, errors)."""
    out, report = [], {"received": len(records), "imported": 0, "skipped": 0, "errors": []}
    for i, rec in enumerate(records):
        kind = rec.get("kind")
        if kind not in PREFIX or not rec.get("ref") or not rec.get("at"):
            report["errors"].append({"record": i, "ref": rec.get("ref"),
                                     "message": "记录须有 kind、ref 和 at"})
            continue
        if exists(COLLECTION[kind], record_id(kind, rec["ref"])):
            report["skipped"] += 1
            continue
        try:
            doc, events = replay_one(rec, ctx)
        except Problem as exc:
            report["errors"].append({"record": i, "ref": rec["ref"], "message": exc.detail,
                                     "errors": exc.errors})
            continue
        except (KeyError, ValueError, TypeError) as exc:
            report["errors"].append({"record": i, "ref": rec["ref"],
                                     "message": f"记录格式不正确：{exc}"})
            continue
        out.append((COLLECTION[kind], doc, events))
        report["imported"] += 1
    return out, report


def member_ids(records):
    """Every member id a batch of records mentions (to look them up at once)."""
    found = set()

    def walk(value, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            if key in ("member_id", "author_member", "members"):
                found.add(value)
            elif key == "as" and value.startswith("member:"):
                found.add(value.split(":", 1)[1])
    walk(records)
    return found
