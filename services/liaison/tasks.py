"""Tasks a city gives its counties (三级联动, downward): 联合调研 invitations,
consultation topics and notices, each with a due date; every county reports
completion back up. Pure.

The city keeps one task with a target per county; each county keeps its copy
(``source`` names the city and its task). A county's copy goes received →
accepted → reported; the city's task is open until every county reported,
then completed.

A task of the provincial committee arrives through the provincial adapter
(``source.via == "province"``): the city keeps it as a received copy like a
county's, may pass it on to its counties as a task of its own
(``parent_task``), and its acceptance and report go up through the adapter
(local events it consumes) instead of a link.
"""
from datetime import date

from services.common.decisions import Aggregate
from services.common.flow import Flow, Step
from services.common.problems import Invalid

KINDS = {"research": "联合调研", "consultation": "协商议题", "notice": "工作通知"}
STATE_LABELS = {"open": "办理中", "completed": "已全部报结",
                "received": "已收到待签收", "accepted": "已签收办理中",
                "reported": "已报送完成情况"}
TARGET_LABELS = {"sent": "已下发", "accepted": "已签收", "reported": "已报结"}


def _office(actor, doc):
    return actor.is_admin


def _received_copy(actor, doc):
    return actor.is_admin and bool(doc.get("source"))


FLOW = Flow("任务", STATE_LABELS, {
    "accept": Step(frozenset({"received"}), "accepted", _received_copy, "签收"),
    "report": Step(frozenset({"received", "accepted"}), "reported", _received_copy,
                   "报送完成情况"),
})


def new_task(data, *, task_id, org, children, today):
    """A task for the counties ``data["targets"]`` (all linked counties if
    empty): ``(doc, events, linked)``; ``linked`` is one ``(type, payload,
    to)`` per county."""
    targets = list(dict.fromkeys(data.get("targets") or children))
    errors = {}
    unknown = [t for t in targets if t not in children]
    if not children:
        errors["targets"] = ["本平台没有联网的下级政协，无法下发任务"]
    elif unknown:
        errors["targets"] = [f"{t} 不是本平台联网的下级政协" for t in unknown]
    if data["due_on"] < today:
        errors["due_on"] = ["完成期限不能早于今天"]
    if errors:
        raise Invalid(errors)
    doc = {"_id": task_id, "org": org, "kind": data["kind"], "title": data["title"],
           "content": data["content"], "due_on": data["due_on"].isoformat(),
           "year": today.year, "created_at": today.isoformat(), "state": "open",
           "targets": {t: {"org_name": children[t], "state": "sent"} for t in targets}}
    if data.get("parent_task"):
        doc["parent_task"] = data["parent_task"]
    body = payload(doc)
    assigned = dict(body, content=doc["content"])
    if doc.get("parent_task"):
        assigned["parent_task"] = doc["parent_task"]
    return doc, [("task.created", dict(body, targets=targets))], [
        ("task.assigned", assigned, t) for t in targets]


TASKS = Aggregate("tasks", "任务")   # its endpoints are for the office


def payload(doc, **extra):
    return dict({"task_id": doc["_id"],   # a county's copy keeps the city's id
                 "kind": doc["kind"], "title": doc["title"], "due_on": doc["due_on"],
                 "state": doc["state"]}, **extra)


def received(body, *, origin, org, today, via=None):
    """A county's copy of the city's task (or a platform's of the province's,
    ``via="province"``): ``(doc, events)``."""
    doc = {"_id": body["task_id"], "org": org, "kind": body["kind"], "title": body["title"],
           "content": body.get("content"), "due_on": body["due_on"],
           "year": today.year, "created_at": today.isoformat(), "state": "received",
           "source": {"org": origin, "task_id": body["task_id"]}}
    if body.get("parent_task"):   # the city passes on a provincial task
        doc["source"]["parent_task"] = body["parent_task"]
    if via:
        doc["source"]["via"] = via
        doc["source"].update({k: body.get(k) for k in ("issuer", "issued_on")})
    return doc, [("task.received", payload(doc, source_org=origin))]


def passed_on_from(parent):
    """Errors when ``parent`` (a task this platform received) cannot be
    passed on to the counties; {} when it can."""
    if parent is None:
        return {"parent_task": ["任务不存在"]}
    if not parent.get("source"):
        return {"parent_task": ["只能转发上级下发给本级的任务"]}
    return {}


def act(doc, action, data, *, today):
    """A county's step on its copy: ``(fields, events, linked)``; the report
    (and the acceptance) go up to the city."""
    fields = {"state": FLOW.steps[action].target}
    if action == "accept":
        fields["accepted_on"] = today.isoformat()
        up = {"state": "accepted", "on": today.isoformat()}
    else:
        done = data.get("completed_on") or today
        if done > today:
            raise Invalid({"completed_on": ["完成日期不能晚于今天"]})
        report = {"summary": data["summary"], "completed_on": done.isoformat(),
                  "refs": list(data.get("refs") or []),
                  "on_time": done.isoformat() <= doc["due_on"]}
        fields.update(report=report, reported_on=today.isoformat())
        up = dict(report, state="reported", on=today.isoformat())
    new = dict(doc, **fields)
    event = "task.accepted" if action == "accept" else "task.reported"
    events = [(event, payload(new, source_org=doc["source"]["org"]))]
    if doc["source"].get("via") == "province":   # the provincial adapter sends it up
        return fields, events, []
    return fields, events, [
        ("task.progressed", dict(up, task_id=doc["source"]["task_id"]), doc["source"]["org"])]


def sent_to(task, county):
    """True when this platform's task was sent to ``county`` (which may then
    report progress on it)."""
    return county in (task.get("targets") or {})


def progressed(task, county, body):
    """The city's task after ``county`` reported progress: ``(fields,
    events)``; nothing for a county it was not sent to or a step it knows."""
    target = (task.get("targets") or {}).get(county)
    order = ("sent", "accepted", "reported")
    if target is None or order.index(body["state"]) <= order.index(target["state"]):
        return {}, []
    targets = dict(task["targets"])
    targets[county] = dict(target, **{k: v for k, v in body.items() if k != "task_id"})
    fields = {"targets": targets}
    events = [("task.updated", payload(task, county=county, county_state=body["state"]))]
    if all(t["state"] == "reported" for t in targets.values()):
        fields["state"] = "completed"
        events.append(("task.completed", payload(dict(task, state="completed"))))
    return fields, events


def view(doc, today):
    """The task with labels and what is overdue (past due, not reported)."""
    out = dict(doc)
    out["kind_label"] = KINDS[doc["kind"]]
    due = date.fromisoformat(doc["due_on"])
    if doc.get("source"):
        out["overdue"] = doc["state"] != "reported" and today > due
    else:
        out["targets"] = {org: dict(t, state_label=TARGET_LABELS[t["state"]],
                                    overdue=t["state"] != "reported" and today > due)
                          for org, t in (doc.get("targets") or {}).items()}
        out["overdue"] = any(t["overdue"] for t in out["targets"].values())
    return out
