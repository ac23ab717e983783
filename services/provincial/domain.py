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
KINDS = {"opinion": "社情民意", "proposal": "提案", "task_report": "省级任务签收和完成情况",
         "figures": "年度统计数据"}


def endpoint(doc):
    """``(method, path, label)`` of the call that delivers ``doc`` (the label
    names the endpoint in metrics, without ids)."""
    kind, item = doc["kind"], doc["item"]
    if kind == "task_report":
        return "POST", f"/api/v1/tasks/{item['task_id']}/reports", "task_reports"
    if kind == "figures":
        return "PUT", f"/api/v1/figures/{item['org']}/{item['year']}", "figures"
    return "POST", f"/api/v1/{kind}s", f"{kind}s"
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


def task_report_body(item, *, own_org, province_org, tables):
    """This platform's acceptance of, or completion report on, a provincial task."""
    report = item.get("report") or {}
    return {"org": own_org, "state": item["state"], "on": item.get("on"),
            "summary": report.get("summary"), "completed_on": report.get("completed_on"),
            "on_time": report.get("on_time"), "refs": report.get("refs") or [],
            "passed_on_to": item.get("passed_on_to") or []}


def _recode(counts, tables, table):
    """``{local value: n}`` as ``{provincial code: n}`` (values sharing a code add up)."""
    out = {}
    for value, n in (counts or {}).items():
        code = to_province(tables, table, value)
        if code is not None:
            out[code] = out.get(code, 0) + n
    return dict(sorted(out.items()))


def figures_body(item, *, own_org, province_org, tables):
    """One platform's yearly figures: its roster by 界别, party and 专委会
    (active memberships; a person counts once per committee), proposal and
    社情民意 statistics, with local codes as provincial ones."""
    roster = dict(item.get("roster") or {})
    roster.update(by_sector=_recode(roster.get("by_sector"), tables, "sectors"),
                  by_party=_recode(roster.get("by_party"), tables, "parties"))
    proposals = dict(item.get("proposals") or {})
    if proposals.get("by_category"):
        merged = {}
        for value, share in proposals["by_category"].items():
            code = to_province(tables, "proposal_categories", value)
            merged[code] = merged.get(code, 0) + (share or {}).get("count", 0)
        proposals["by_category"] = dict(sorted(merged.items()))
    org = item["org"]
    return {"org": to_province(tables, "orgs", org) if tables.get("orgs") else org,
            "org_name": item["org_name"], "level": item["level"], "year": item["year"],
            "reported_by": own_org, "as_of": item.get("as_of"), "roster": roster,
            "people": item.get("people"), "proposals": proposals,
            "opinions": item.get("opinions") or {}}


BODIES = {"opinion": opinion_body, "proposal": proposal_body,
          "task_report": task_report_body, "figures": figures_body}


def yearly_figures(year, *, own_org, own_name, level, roster, proposals, liaison, today):
    """Each platform's figures for ``year`` from what members, proposals and
    liaison hold here (this platform's own and each linked county's latest
    roll-up): ``{org: item}``. A county none of whose figures arrived yet is
    left out; one missing a part sends what it has (an empty part)."""
    by_org = {}
    people = (roster or {}).get("people")
    for p in (roster or {}).get("platforms") or []:
        entry = by_org.setdefault(p["org"], {"org_name": p.get("org_name") or p["org"]})
        if p.get("level") == "linked" and not p.get("received"):
            continue   # nothing of this county's roster arrived yet
        entry["roster"] = {k: p.get(k) for k in ("active", "by_sector", "by_party",
                                                 "by_committee", "by_role")}
    for name, part in (("proposals", proposals or {}), ("opinions", liaison or {})):
        own = part.get("own")
        if own is not None:
            by_org.setdefault(own_org, {"org_name": own_name})[name] = \
                own.get("opinions", own) if name == "opinions" else own
        for county in part.get("counties") or []:
            if county.get("figures") is None:
                continue
            entry = by_org.setdefault(county["org"], {"org_name": county.get("org_name")})
            figures = county["figures"]
            entry[name] = figures.get("opinions", figures) if name == "opinions" else figures
            entry["as_of"] = max(entry.get("as_of") or "", county.get("as_of") or "") or None
    out = {}
    for org, entry in by_org.items():
        if org != own_org and not any(k in entry for k in ("proposals", "opinions")):
            continue
        out[org] = {"org": org, "org_name": entry["org_name"],
                    "title": f"{entry['org_name']}{year}年度统计数据",
                    "level": level if org == own_org else "county", "year": year,
                    "as_of": entry.get("as_of") if org != own_org else today,
                    "roster": entry.get("roster") or {}, "proposals": entry.get("proposals") or {},
                    "opinions": entry.get("opinions") or {},
                    "people": people if org == own_org else None}
    return out


def figures_change(doc, item, digest, key, now):
    """The figures delivery of one platform and year after a recount: a new
    delivery (``doc`` None), the fields of a changed one (a fresh
    Idempotency-Key ``key``: figures may change back to an earlier value), or
    None when the figures are unchanged or a send is in flight (the next
    recount sees it)."""
    if doc is None:
        return dict(new_delivery("figures", f"{item['org']}:{item['year']}", key, item, now),
                    digest=digest)
    if doc.get("digest") == digest or doc["state"] == "sending":
        return None
    return {"item": item, "key": key, "digest": digest, "state": "pending", "attempts": 0,
            "next_at": _iso(now), "last_error": None}


# province feedback kinds → the local 社情民意 action and level
FEEDBACK_ACTIONS = {
    "opinion_adopted": ("adopt", "province"),
    "opinion_instructed": ("instruct", None),
    "opinion_reported_national": ("report", "national"),
    "opinion_national_adopted": ("adopt", "national"),
    "opinion_national_instructed": ("instruct", "national"),
}


def feedback_event(item, delivery):
    """The local event of one piece of provincial feedback (on a delivered
    item, or a task for this platform), or None when it means nothing locally."""
    kind = item.get("kind")
    if kind == "task_published":
        if not item.get("record_id") or not item.get("title") or not item.get("due_on"):
            return None
        return ("province.task_published", {
            "task_id": item["record_id"], "kind": item.get("task_kind") or "notice",
            "title": item["title"], "content": item.get("content") or item["title"],
            "due_on": item["due_on"], "issued_on": item.get("issued_on"),
            "issuer": item.get("issuer")})
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
