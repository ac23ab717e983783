"""Citizen requests (群众点单 → 社区派单 → 委员接单): states, who moves them,
deadlines and escalation, and the ranked suggestion of members. Pure.

The citizen's contact is kept in the document for the station's staff only;
``payload`` (what events carry) never includes it.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.decisions import Aggregate, See, Visibility
from services.common.flow import Flow, Step
from services.common.problems import Forbidden, Invalid

from .stations import is_staff

CATEGORIES = {"wish": "微心愿", "appeal": "微诉求", "service": "微服务"}
STATE_LABELS = {"filed": "待派单", "dispatched": "已派单待接单", "accepted": "办理中",
                "closed": "已办结待评价", "rated": "已评价", "escalated": "已转化"}
OPEN = ("filed", "dispatched", "accepted")
MEMBER_LOAD_STATES = ("dispatched", "accepted")


def _staff(actor, r):
    return is_staff(actor, r["station_id"])


def _assignee(actor, r):
    return r.get("member_id") in actor.ids("member")


def _assignee_or_staff(actor, r):
    return _assignee(actor, r) or _staff(actor, r)


def _rater(actor, r):
    return _staff(actor, r) or ("citizen" in actor.roles and r.get("filed_by") == actor.sub)


FLOW = Flow("诉求", STATE_LABELS, {
    "dispatch": Step(frozenset({"filed"}), "dispatched", _staff, "派单"),
    "decline": Step(frozenset({"dispatched"}), "filed", _assignee, "退回（不接单）"),
    "accept": Step(frozenset({"dispatched"}), "accepted", _assignee, "接单"),
    "close": Step(frozenset({"accepted"}), "closed", _assignee_or_staff, "办结"),
    "rate": Step(frozenset({"closed", "escalated"}), "rated", _rater, "评价"),
    "escalate": Step(frozenset({"accepted", "closed"}), "escalated", _assignee_or_staff,
                     "转为社情民意或提案"),
})


@dataclass
class RequestRules:
    dispatch_hours: int = 24     # filed → dispatched
    accept_hours: int = 48       # dispatched → accepted
    close_days: int = 15         # accepted → closed
    office_after_hours: int = 24  # a station's overdue request goes on to the office
    topics: dict = field(default_factory=dict)   # topic → sectors matched first

    @classmethod
    def from_config(cls, conf):
        conf = conf or {}
        d = conf.get("deadlines") or {}
        return cls(dispatch_hours=int(d.get("dispatch_hours", 24)),
                   accept_hours=int(d.get("accept_hours", 48)),
                   close_days=int(d.get("close_days", 15)),
                   office_after_hours=int(d.get("office_after_hours", 24)),
                   topics=dict(conf.get("topics") or {}))


def _iso(dt):
    return dt.isoformat(timespec="seconds")


def new_request(data, actor, *, request_id, station, org, now, rules):
    if not (is_staff(actor, station["_id"]) or "citizen" in actor.roles):
        raise Forbidden("只有群众本人或站点工作人员可以登记诉求")
    if data.get("topic") and data["topic"] not in rules.topics:
        raise Invalid({"topic": [f"取值应为：{'、'.join(rules.topics)}"]})
    doc = {"_id": request_id, "org": org, "station_id": station["_id"],
           "station_name": station.get("name"), "township": station["township"], "place_code": data.get("place_code")
           or station["place_code"], "category": data["category"], "topic": data.get("topic"),
           "title": data["title"], "description": data["description"],
           "contact": data.get("contact"), "filed_by": actor.sub,
           "channel": data.get("channel") or ("online" if "citizen" in actor.roles
                                              else "station"),
           "state": "filed", "member_id": None, "declined_by": [], "year": now.year,
           "filed_at": _iso(now), "dispatched_at": None, "accepted_at": None,
           "closed_at": None, "due": {"dispatch": _iso(now + timedelta(hours=rules.dispatch_hours))},
           "overdue": [], "result": None, "resolved": None, "on_time": None, "rating": None,
           "escalation": None, "history": [_entry("file", None, "filed", actor, now)]}
    return doc, [("request.filed", payload(doc))]


def _entry(action, before, after, actor, now, note=None):
    entry = {"action": action, "from": before, "to": after, "by": actor.sub, "at": _iso(now)}
    if note:
        entry["note"] = note
    return entry


def act(r, action, data, actor, *, now, rules, member_active=None):
    """Fields to change and events to emit for ``action`` on request ``r``."""
    target = FLOW.check(r, action, actor)
    fields = {"state": target}
    extra = {}
    if action == "dispatch":
        member = data["member_id"]
        if not member_active:
            raise Invalid({"member_id": ["不是在任委员"]})
        fields.update(member_id=member, dispatched_at=_iso(now),
                      due=dict(r["due"], accept=_iso(now + timedelta(hours=rules.accept_hours))))
        # the notice names where and until when: 某某议事室, 接单期限
        extra.update(member_id=member, station_name=r.get("station_name"),
                     accept_due=fields["due"]["accept"])
    elif action == "decline":
        fields.update(member_id=None, declined_by=r["declined_by"] + [r["member_id"]],
                      dispatched_at=None,
                      due=dict(r["due"], dispatch=_iso(now + timedelta(
                          hours=rules.dispatch_hours))))
        extra.update(member_id=r["member_id"], reason=data["reason"])
    elif action == "accept":
        fields.update(accepted_at=_iso(now),
                      due=dict(r["due"], close=_iso(now + timedelta(days=rules.close_days))))
    elif action == "close":
        on_time = int(_iso(now) <= r["due"]["close"])
        fields.update(closed_at=_iso(now), result=data["result"],
                      resolved=int(data["resolved"]), on_time=on_time)
        # how the citizen can be told (never the contact itself): the channel
        # the station recorded, for notify
        extra.update(resolved=bool(data["resolved"]), on_time=bool(on_time),
                     contact_channel=contact_channel(r.get("contact")))
    elif action == "rate":
        if r.get("rating"):
            raise Invalid({"score": ["该诉求已评价"]})
        fields["rating"] = {"score": data["score"], "comment": data.get("comment")}
        extra["score"] = data["score"]
    elif action == "escalate":
        check_escalation(r)
        fields["escalation"] = {"to": data["to"], "target_id": data["target_id"],
                                "at": _iso(now)}
        extra.update(to=data["to"], target_id=data["target_id"])
    fields["history"] = r["history"] + [_entry(action, r["state"], target, actor, now,
                                               data.get("reason"))]
    new = dict(r, **fields)
    event = {"dispatch": "request.dispatched", "decline": "request.declined",
             "accept": "request.accepted", "close": "request.closed", "rate": "request.rated",
             "escalate": "request.escalated"}[action]
    return fields, [(event, payload(new, **extra))]


def check_escalation(r):
    if r["state"] == "closed" and r.get("resolved"):
        raise Invalid({"to": ["已解决的诉求不需要转化"]})


def return_to_dispatch(r, *, now, rules, reason):
    """The assigned member left (removed from the committee): back to dispatch."""
    if r["state"] not in MEMBER_LOAD_STATES:
        return {}, []
    fields = {"state": "filed", "member_id": None, "dispatched_at": None, "accepted_at": None,
              "due": dict(r["due"], dispatch=_iso(now + timedelta(hours=rules.dispatch_hours))),
              "history": r["history"] + [{"action": "return", "from": r["state"],
                                          "to": "filed", "by": "system", "at": _iso(now),
                                          "note": reason}]}
    return fields, [("request.returned_to_dispatch", payload(
        dict(r, **fields), member_id=r["member_id"], reason=reason))]


STAGE_OF = {"filed": "dispatch", "dispatched": "accept", "accepted": "close"}
ESCALATE_TO = {"dispatch": "station", "accept": "station", "close": "office"}


def scan(r, now, office_after=timedelta(hours=24)):
    """Untouched past its due time: one ``request.overdue`` per stage and
    round, to the station (dispatch, accept) or the office (close); a request
    the station has let lie ``office_after`` longer goes on to the office."""
    stage = STAGE_OF.get(r["state"])
    due = (r.get("due") or {}).get(stage) if stage else None
    if not due or _iso(now) <= due:
        return {}, []
    overdue, events = list(r["overdue"]), []
    steps = [(f"{stage}:{due}", ESCALATE_TO[stage], True)]
    if ESCALATE_TO[stage] == "station":
        steps.append((f"{stage}:{due}:office", "office",
                      _iso(now) > _iso(datetime.fromisoformat(due) + office_after)))
    for key, to, reached in steps:
        if reached and key not in overdue:
            overdue.append(key)
            events.append(("request.overdue", payload(r, stage=stage, due=due, escalate_to=to)))
    return ({"overdue": overdue}, events) if events else ({}, [])


def suggest_members(request, stations, members, load, rules, top=5):
    """Members ranked for dispatching ``request``: those of its station first,
    then of its township, matched by sector for the topic, lighter load first.

    ``stations``: station documents of the request's township; ``members``:
    id → public member view of every member of those stations; ``load``:
    id → open requests."""
    station_members = set()
    township_members = set()
    for s in stations:
        (station_members if s["_id"] == request["station_id"] else township_members).update(
            s["members"])
    sectors = set(rules.topics.get(request.get("topic")) or ())
    ranked = []
    for mid, m in members.items():
        if m.get("status", "active") != "active" or mid in request.get("declined_by", ()):
            continue
        reasons, score = [], 0.0
        if mid in station_members:
            score += 3
            reasons.append("本站点委员")
        elif mid in township_members:
            score += 1.5
            reasons.append("同乡镇站点委员")
        else:
            continue
        if sectors and m.get("sector") in sectors:
            score += 1
            reasons.append(f"界别对口（{m['sector']}）")
        open_count = load.get(mid, 0)
        score -= 0.5 * open_count
        reasons.append(f"在办诉求 {open_count} 件")
        ranked.append({"member_id": mid, "name": m.get("name"), "score": round(score, 2),
                       "open_requests": open_count, "reasons": reasons})
    ranked.sort(key=lambda x: (-x["score"], x["member_id"]))
    return ranked[:top]


REQUESTS = Aggregate("requests", "诉求", Visibility(
    "群众诉求", See("station", "station_id"), See("member", "member_id"),
    See("sub", "filed_by", role="citizen")))


def payload(r, **extra):
    """A request in events: never the citizen's contact or description."""
    body = {"request_id": r["_id"], "station_id": r["station_id"], "state": r["state"],
            "category": r["category"], "topic": r.get("topic"), "title": r["title"],
            "member_id": r.get("member_id"), "year": r["year"], "channel": r.get("channel")}
    body.update(extra)
    return body


def view(r, actor):
    """A request as ``actor`` may see it: the contact only for the station's staff."""
    out = FLOW.view({k: v for k, v in r.items() if k != "contact"}, actor)
    out["has_contact"] = bool(r.get("contact"))
    if r.get("contact") and r["station_id"] in actor.ids("station"):
        out["contact"] = r["contact"]
    return out


_MOBILE = re.compile(r"^\+?(?:86)?1[3-9]\d{9}$")


def contact_channel(contact):
    """The channel a recorded citizen contact reaches: ``sms`` for a mobile
    number, ``email`` for an address, ``None`` otherwise (a landline: the
    station calls)."""
    text = re.sub(r"[\s-]", "", str(contact or ""))
    if _MOBILE.match(text):
        return "sms"
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        return "email"
    return None


def contact_addresses(contact):
    """The recorded contact as notify's addresses (phone or e-mail)."""
    channel = contact_channel(contact)
    text = re.sub(r"[\s-]", "", str(contact or ""))
    return {"phone": text[-11:] if channel == "sms" else None,
            "email": text if channel == "email" else None}
