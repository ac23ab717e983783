"""The adapter's rules, pure: a delivery record per item sent to the
province, what each answer does to it, the provincial body of an item
(through the code tables), and the local action each piece of provincial
feedback means.

A delivery: ``pending`` (due at ``next_at``) → ``sending`` (claimed until
``lease_until``; a worker that dies mid-call leaves it to be claimed again,
and the province's idempotency key makes the repeat harmless) →
``acknowledged`` (the province's record id) | ``refused`` (its code and
message; an operator fixes the data or the mapping and retries it) — or back
to ``pending`` after a transient failure, later each time.
"""
from datetime import timedelta

from tenacity import RetryCallState, wait_exponential_jitter

from services.common.decisions import Aggregate, Visibility

from .protocol import Unmapped, to_province

STATES = {"pending": "待报送", "sending": "报送中", "acknowledged": "省级已接收",
          "refused": "省级拒收"}
KINDS = {"opinion": "社情民意", "proposal": "提案"}
ENDPOINTS = {"opinion": "/api/v1/opinions", "proposal": "/api/v1/proposals"}
# the province's progress on a forwarded proposal, as shown here
PROPOSAL_STATES = {"received": "省政协已收到", "registered": "省政协已立案",
                   "assigned": "已交办省直单位", "answered": "已答复", "closed": "已办结",
                   "not_registered": "省政协不予立案"}
DELIVERIES = Aggregate("deliveries", "报送记录", Visibility("报送记录", staff=("admin",)))
FEEDBACK = Aggregate("feedback", "省级反馈", Visibility("省级反馈", staff=("admin",)))
# tenacity's exponential backoff with jitter: 1, 2, 4 … s (+ up to 1 s), at most 5 min
BACKOFF = wait_exponential_jitter(initial=1, max=300, exp_base=2, jitter=1)


def backoff_seconds(attempts):
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = max(1, attempts)
    return BACKOFF(state)


def _iso(moment):
    return moment.isoformat(timespec="seconds")


def new_delivery(kind, local_id, key, item, now):
    """The record of one item to send, due at once; ``key`` (the id of the
    event that asked for it) is the Idempotency-Key of every attempt."""
    return {"_id": f"{kind}:{local_id}", "kind": kind, "local_id": local_id, "key": key,
            "item": item, "state": "pending", "attempts": 0, "next_at": _iso(now),
            "lease_until": None, "created_at": _iso(now), "last_error": None,
            "record_id": None, "acknowledged_at": None}


def due(doc, now):
    """True when a worker may send ``doc`` now."""
    if doc["state"] == "pending":
        return doc["next_at"] <= _iso(now)
    return doc["state"] == "sending" and (doc.get("lease_until") or "") <= _iso(now)


def claim(doc, now, lease_seconds):
    return {"state": "sending", "lease_until": _iso(now + timedelta(seconds=lease_seconds)),
            "attempts": doc["attempts"] + 1}


def _event(doc, **extra):
    return {"delivery_id": doc["_id"], "kind": doc["kind"], "local_id": doc["local_id"],
            **extra}


def answered(doc, answer, now):
    """``(fields, events)`` after the province's ``answer`` (protocol.Answer)
    to the attempt that claimed ``doc``."""
    if answer.kind == "ok":
        record = (answer.body or {}).get("id")
        return ({"state": "acknowledged", "record_id": record, "acknowledged_at": _iso(now),
                 "lease_until": None, "last_error": None},
                [("province.delivered", _event(doc, record_id=record))])
    error = {"status": answer.status, "code": answer.code, "message": answer.message,
             "at": _iso(now)}
    if answer.kind == "permanent":
        return ({"state": "refused", "lease_until": None, "last_error": error},
                [("province.refused", _event(doc, code=answer.code,
                                             message=(answer.message or "")[:500]))])
    wait = max(backoff_seconds(doc["attempts"]), answer.retry_after or 0)
    return ({"state": "pending", "lease_until": None, "last_error": error,
             "next_at": _iso(now + timedelta(seconds=wait))}, [])


def unmapped(doc, error, now):
    """A value the code tables do not map: this item waits for the mapping,
    the others go on."""
    return ({"state": "refused", "lease_until": None, "last_error": {
        "status": None, "code": "UNMAPPED", "message": str(error), "at": _iso(now)}},
        [("province.refused", _event(doc, code="UNMAPPED", message=str(error)[:500]))])


def retried(doc, now):
    """An operator's retry of a refused item: due at once, counted afresh."""
    if doc["state"] != "refused":
        return None
    return {"state": "pending", "next_at": _iso(now), "attempts": 0}


def _common(item, own_org, province_org, tables):
    """What every item sent up carries: its ids, the path it came up (mapped
    org codes), title and text."""
    path = [to_province(tables, "orgs", o) if (tables.get("orgs") or {}) else o
            for o in [*item.get("path", []), own_org, province_org] if o]
    return {"local_id": item["id"], "org": own_org, "path": list(dict.fromkeys(path)),
            "title": item["title"], "content": item["content"]}


def _person(person, own_org, tables):
    """An author or proposer: name, platform, 界别 and party as provincial codes."""
    person = person or {}
    return {"name": person.get("name") or "", "org": person.get("org") or own_org,
            "sector": to_province(tables, "sectors", person.get("sector")),
            "party": to_province(tables, "parties", person.get("party"))}


def opinion_body(item, *, own_org, province_org, tables):
    """The provincial body of a 社情民意 item (``item`` as liaison gives it).
    Raises ``Unmapped`` for a value the tables lack."""
    author = dict(_person(item.get("author"), own_org, tables),
                  committees=(item.get("author") or {}).get("committees") or [])
    return dict(_common(item, own_org, province_org, tables),
                category=to_province(tables, "categories", item.get("category") or "其他"),
                author=author, local_number=item.get("issue"),
                reported_on=item.get("reported_on"))


def proposal_body(item, *, own_org, province_org, tables):
    """The provincial body of a proposal forwarded to the provincial committee."""
    return dict(_common(item, own_org, province_org, tables),
                category=to_province(tables, "proposal_categories",
                                     item.get("category") or "other"),
                proposer=_person(item.get("proposer"), own_org, tables),
                cosigners=item.get("cosigners") or [], local_number=item.get("number"),
                reason=item.get("reason"), forwarded_on=item.get("forwarded_on"))


BODIES = {"opinion": opinion_body, "proposal": proposal_body}


# province feedback kinds → the local 社情民意 action and level
FEEDBACK_ACTIONS = {
    "opinion_adopted": ("adopt", "province"),
    "opinion_instructed": ("instruct", None),
    "opinion_reported_national": ("report", "national"),
    "opinion_national_adopted": ("adopt", "national"),
    "opinion_national_instructed": ("instruct", "national"),
}


def feedback_event(item, delivery):
    """The local event of one piece of provincial feedback on a delivered
    item, or None when it means nothing locally."""
    kind = item.get("kind")
    if kind == "proposal_progressed" and delivery is not None and \
            item.get("state") in PROPOSAL_STATES:
        return ("province.proposal_feedback", {
            "proposal_id": delivery["local_id"], "record_id": item.get("record_id"),
            "state": item["state"], "state_label": PROPOSAL_STATES[item["state"]],
            "text": item.get("text"), "on": item.get("on"),
            "seq": int(item.get("cursor") or 0)})
    if kind not in FEEDBACK_ACTIONS or delivery is None:
        return None
    action, level = FEEDBACK_ACTIONS[kind]
    level = level or ("national" if item.get("level") == "national" else "province")
    note = " ".join(str(x) for x in (item.get("issue"), item.get("number")) if x) or None
    return ("province.opinion_feedback", {
        "opinion_id": delivery["local_id"], "record_id": item.get("record_id"),
        "action": action, "level": level, "leader": item.get("leader"),
        "text": item.get("text"), "note": note, "on": item.get("on")})


__all__ = ["Unmapped"]
