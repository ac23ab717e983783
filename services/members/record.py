"""履职档案 (performance record): facts taken from events, points from a rule table.

Pure. ``facts_from_event`` turns one event into the facts it proves, each under
a key of its own (the same fact from a redelivered or repeated event has the
same key, so storing facts by key is idempotent and order does not matter).
``score`` turns one member's facts of one year into the record with the
platform's point table; changing the table recomputes records from the stored
facts, never from the events again.
"""
from collections import Counter
from datetime import datetime


DEFAULT_POINTS = {
    "proposal_lead": 0, "proposal_cosigner": 0,
    "proposal_registered_lead": 15, "proposal_registered_cosigner": 3,
    "proposal_key": 15, "proposal_excellent": 10,
    "opinion_submitted": 1, "opinion_issued": 2,
    "opinion_adopted_city": 5, "opinion_adopted_province": 10,
    "opinion_adopted_national": 30, "opinion_instructed": 10,
    "meeting_attended": 5, "meeting_leave": 0, "meeting_absent": -5,
    "activity_attended": 3, "activity_leave": 0, "activity_absent": 0,
    "station_activity": 2, "request_handled": 2,
}
DEFAULT_MINIMUMS = {"proposals": 1, "opinions": 1, "activities": 3}
LABELS = {
    "proposal_lead": "领衔提案", "proposal_cosigner": "联名提案",
    "proposal_registered_lead": "领衔提案立案", "proposal_registered_cosigner": "联名提案立案",
    "proposal_key": "重点提案", "proposal_excellent": "优秀提案",
    "opinion_submitted": "报送社情民意", "opinion_issued": "社情民意编发",
    "opinion_adopted_city": "社情民意市级采用", "opinion_adopted_province": "社情民意省级采用",
    "opinion_adopted_national": "社情民意全国采用", "opinion_instructed": "获领导批示",
    "meeting_attended": "出席会议", "meeting_leave": "会议请假", "meeting_absent": "会议缺席",
    "activity_attended": "参加活动", "activity_leave": "活动请假", "activity_absent": "活动缺席",
    "station_activity": "联络站活动", "request_handled": "办理群众诉求",
}
# meeting kinds counted as meetings; the others are activities (视察、调研、培训、读书)
MEETING_KINDS = ("plenary", "standing", "topical", "counterpart", "sector")
ATTENDANCE = ("attended", "leave", "absent")


def _year_of(event, payload):
    if payload.get("year"):
        return int(payload["year"])
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).year


def _fact(key, member, year, kind, event, **extra):
    return dict({"_id": key, "member_id": member, "year": year, "kind": kind,
                 "source": event["type"], "seq": event.get("seq", 0)}, **extra)


def _proposal_facts(event, p):
    year = _year_of(event, p)
    pid = p["proposal_id"]
    proposers = list(p.get("proposers") or [])
    lead = p.get("lead_member")
    out = []
    etype = event["type"]
    imported = etype == "proposal.imported"
    submitted = etype == "proposal.submitted" or (imported and p.get("submitted"))
    registered = etype == "proposal.registered" or (imported and p.get("registered"))
    for member in proposers:
        role = "lead" if member == lead else "cosigner"
        if submitted:
            out.append(_fact(f"proposal:{pid}:{member}", member, year, f"proposal_{role}",
                             event, ref=pid))
        if registered:
            out.append(_fact(f"proposal-registered:{pid}:{member}", member, year,
                             f"proposal_registered_{role}", event, ref=pid))
    if lead and (etype == "proposal.key_selected" or (etype == "proposal.imported"
                                                       and p.get("key"))):
        out.append(_fact(f"proposal-key:{pid}:{lead}", lead, year, "proposal_key", event,
                         ref=pid))
    if lead and (etype == "proposal.excellent_selected" or (imported and p.get("excellent"))):
        out.append(_fact(f"proposal-excellent:{pid}:{lead}", lead, year,
                         "proposal_excellent", event, ref=pid))
    return out


def _opinion_facts(event, p):
    author = p.get("author_member")
    if not author:
        return []
    year = _year_of(event, p)
    oid = p["opinion_id"]
    kind = {"opinion.submitted": "opinion_submitted", "opinion.issued": "opinion_issued"}.get(
        event["type"])
    if kind:
        return [_fact(f"{kind}:{oid}:{author}", author, year, kind, event, ref=oid)]
    level = p.get("level")
    if event["type"] == "opinion.adopted" and level in ("city", "province", "national"):
        return [_fact(f"opinion-adopted-{level}:{oid}:{author}", author, year,
                      f"opinion_adopted_{level}", event, ref=oid)]
    if event["type"] == "opinion.instructed":
        return [_fact(f"opinion-instructed:{oid}:{p.get('instruction_id') or level}:{author}",
                      author, year, "opinion_instructed", event, ref=oid)]
    return []


def _meeting_facts(event, p):
    year = _year_of(event, p)
    group = "meeting" if p.get("kind") in MEETING_KINDS else "activity"
    out = []
    for status in ATTENDANCE:
        for member in p.get(status) or ():
            out.append(_fact(f"meeting:{p['meeting_id']}:{member}", member, year,
                             f"{group}_{status}", event, ref=p["meeting_id"]))
    return out


def _liaison_facts(event, p):
    year = _year_of(event, p)
    if event["type"] == "request.closed" and p.get("member_id"):
        return [_fact(f"request:{p['request_id']}:{p['member_id']}", p["member_id"], year,
                      "request_handled", event, ref=p["request_id"])]
    if event["type"] == "station.activity_held":
        return [_fact(f"station-activity:{p['activity_id']}:{m}", m, year, "station_activity",
                      event, ref=p["activity_id"]) for m in p.get("members") or ()]
    return []


def facts_from_event(event):
    """The facts an event proves (possibly none)."""
    payload = event.get("payload") or {}
    etype = event.get("type", "")
    if etype.startswith("proposal."):
        return _proposal_facts(event, payload)
    if etype.startswith("opinion."):
        return _opinion_facts(event, payload)
    if etype == "meeting.attendance_recorded":
        return _meeting_facts(event, payload)
    if etype in ("request.closed", "station.activity_held"):
        return _liaison_facts(event, payload)
    return []


RECORD_EVENT_TYPES = (
    "proposal.submitted", "proposal.registered", "proposal.key_selected",
    "proposal.excellent_selected", "proposal.imported", "opinion.submitted", "opinion.issued",
    "opinion.adopted", "opinion.instructed", "meeting.attendance_recorded", "request.closed",
    "station.activity_held")


def keep(current, fact):
    """Which of two facts under one key to keep: the one from the newer
    change of its source (a re-closed meeting replaces its attendance)."""
    if current is None:
        return fact
    return fact if fact.get("seq", 0) > current.get("seq", 0) else current


def score(member_id, year, facts, points=None):
    """One member's record for one year from their facts."""
    table = dict(DEFAULT_POINTS, **(points or {}))
    counts = Counter(f["kind"] for f in facts)
    items = {k: {"count": n, "points": n * table.get(k, 0), "label": LABELS.get(k, k)}
             for k, n in sorted(counts.items())}
    totals = {
        "proposals": counts["proposal_lead"] + counts["proposal_cosigner"],
        "proposals_lead": counts["proposal_lead"],
        "opinions": counts["opinion_submitted"],
        "opinions_adopted": sum(counts[f"opinion_adopted_{lv}"]
                                for lv in ("city", "province", "national")),
        "meetings_attended": counts["meeting_attended"],
        "meetings_leave": counts["meeting_leave"],
        "meetings_absent": counts["meeting_absent"],
        "activities": counts["meeting_attended"] + counts["activity_attended"]
        + counts["station_activity"],
        "requests_handled": counts["request_handled"],
    }
    return {"_id": f"{member_id}:{year}", "member_id": member_id, "year": year,
            "items": items, "totals": totals,
            "points": sum(i["points"] for i in items.values())}


def shortfalls(record, minimums=None):
    """What a record lacks against the platform's yearly minimums."""
    mins = dict(DEFAULT_MINIMUMS, **(minimums or {}))
    have = {"proposals": record["totals"]["proposals"], "opinions": record["totals"]["opinions"],
            "activities": record["totals"]["activities"]}
    return {k: {"required": v, "actual": have.get(k, 0)} for k, v in mins.items()
            if have.get(k, 0) < v}


SHORTFALL_LABELS = {"proposals": "提案", "opinions": "社情民意", "activities": "活动"}


def shortfall_text(found):
    """``{"proposals": {"required": 1, "actual": 0}, ...}`` as an office writes
    it: 提案 0/1；活动 0/3."""
    return "；".join(f"{SHORTFALL_LABELS.get(k, k)} {v['actual']}/{v['required']}"
                    for k, v in found.items())


def empty_record(member_id, year):
    return score(member_id, year, [])


def report(records, members, year, minimums=None, attendance=None):
    """The yearly report (年度履职通报): ranking, members below the minimums,
    attendance rates by committee and by sector."""
    by_member = {r["member_id"]: r for r in records}
    rows = []
    for mid, m in sorted(members.items()):
        rec = by_member.get(mid) or empty_record(mid, year)
        rows.append({"member_id": mid, "name": m.get("name"), "sector": m.get("sector"),
                     "committees": m.get("committees") or [], "points": rec["points"],
                     "totals": rec["totals"], "shortfalls": shortfalls(rec, minimums)})
    rows.sort(key=lambda r: (-r["points"], r["member_id"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return {"year": year, "members": len(rows), "ranking": rows,
            "below_minimums": [r for r in rows if r["shortfalls"]],
            "attendance": attendance_rates(rows)}


def attendance_rates(rows):
    def rate(group):
        attended = sum(r["totals"]["meetings_attended"] for r in group)
        invited = attended + sum(r["totals"]["meetings_leave"] + r["totals"]["meetings_absent"]
                                 for r in group)
        return {"members": len(group), "invited": invited, "attended": attended,
                "rate": round(attended / invited, 4) if invited else None}
    by_committee, by_sector = {}, {}
    for r in rows:
        by_sector.setdefault(r["sector"], []).append(r)
        for c in r["committees"]:
            by_committee.setdefault(c, []).append(r)
    return {"overall": rate(rows),
            "by_committee": {k: rate(v) for k, v in sorted(by_committee.items())},
            "by_sector": {k: rate(v) for k, v in sorted(by_sector.items(), key=lambda kv: str(kv[0]))}}
