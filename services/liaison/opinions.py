"""社情民意信息: submitted → accepted (edited, every version kept) → issued in a
numbered 《社情民意》 → reported upward → adopted / instructed. Pure.

Every step emits an event naming the author member, so the members service
credits the 履职档案; reporting upward addresses the higher platform's org.
"""
from services.common.decisions import Aggregate, See, Visibility
from services.common.flow import Flow, Step
from services.common.problems import Conflict, Forbidden, Invalid

from .stations import is_staff

MAX_CHARS = 1500
STATE_LABELS = {"submitted": "已报送待审", "accepted": "已采用待编发", "rejected": "不予采用",
                "issued": "已编发", "reported": "已向上报送"}
LEVELS = {"county": "县级", "city": "市级", "province": "省级", "national": "全国"}
ORDER = ("county", "city", "province", "national")
ISSUED = frozenset({"issued", "reported"})


def _office(actor, o):
    return actor.is_admin


FLOW = Flow("社情民意", STATE_LABELS, {
    "accept": Step(frozenset({"submitted"}), "accepted", _office, "受理"),
    "reject": Step(frozenset({"submitted"}), "rejected", _office, "不予采用"),
    "edit": Step(frozenset({"submitted", "accepted"}), None, _office, "编辑"),
    "issue": Step(frozenset({"accepted"}), "issued", _office, "编发"),
    "report": Step(ISSUED, "reported", _office, "向上报送"),
    "adopt": Step(ISSUED, None, _office, "记录采用"),
    "instruct": Step(ISSUED, None, _office, "记录批示"),
})


def higher_levels(own_level):
    """Levels above this platform's, to which it can report."""
    return ORDER[ORDER.index(own_level) + 1:] if own_level in ORDER else ORDER[1:]


def target_org(level, *, own_level, parent_org, orgs):
    """Org code an upward report is addressed to: the parent platform for the
    next level up, the configured org codes further up."""
    if level == ORDER[ORDER.index(own_level) + 1] and parent_org:
        return str(parent_org)
    return str(orgs.get(level) or level)


def _check_length(errors, field, text):
    if text is not None and len(text) > MAX_CHARS:
        errors[field] = [f"长度不能超过 {MAX_CHARS} 个字符"]


def new_opinion(data, actor, *, opinion_id, org, today, members_found, station):
    own = actor.ids("member")
    author = data.get("author_member")
    errors = {}
    if author is None and own and not actor.is_admin:
        author = sorted(own)[0]
    if author and not actor.is_admin and author not in own:
        # station staff submit for citizens (no author) or as themselves: naming
        # another member would credit that member's 履职档案
        raise Forbidden("只能以本人名义报送社情民意")
    if not (actor.is_admin or own or (station and is_staff(actor, station["_id"]))):
        raise Forbidden("社情民意由委员、站点（代群众）或政协办公室报送")
    if author and author not in members_found:
        errors["author_member"] = ["不是在任委员"]
    if data.get("station_id") and station is None:
        errors["station_id"] = ["站点不存在"]
    if not author and not data.get("station_id"):
        errors["station_id"] = ["代群众报送的社情民意须指明站点"]
    _check_length(errors, "content", data["content"])
    if errors:
        raise Invalid(errors)
    version = {"n": 1, "title": data["title"], "content": data["content"], "by": actor.sub,
               "on": today.isoformat()}
    doc = {"_id": opinion_id, "org": org, "title": data["title"], "content": data["content"],
           "category": data.get("category"), "author_member": author,
           "station_id": data.get("station_id"), "source_request": data.get("source_request"),
           "state": "submitted", "year": today.year, "submitted_on": today.isoformat(),
           "versions": [version], "issue": None, "reported": {}, "adopted": {},
           "instructions": [], "reason": None}
    return doc, [("opinion.submitted", payload(doc))]


def act(o, action, data, actor, *, today, own_level, parent_org, orgs, issue_no=None,
        instruction_id=None):
    target = FLOW.check(o, action, actor)
    fields, extra = {"state": target}, {}
    if action == "reject":
        fields["reason"] = data["reason"]
        extra["reason"] = data["reason"]
    elif action == "edit":
        errors = {}
        _check_length(errors, "content", data.get("content"))
        if errors:
            raise Invalid(errors)
        title = data.get("title", o["title"])
        content = data.get("content", o["content"])
        if title == o["title"] and content == o["content"]:
            raise Invalid({"content": ["内容没有变化"]})
        fields.update(title=title, content=content, versions=o["versions"] + [{
            "n": len(o["versions"]) + 1, "title": title, "content": content,
            "by": actor.sub, "on": today.isoformat()}])
        extra["version"] = len(o["versions"]) + 1
    elif action == "issue":
        fields["issue"] = {"year": today.year, "number": issue_no, "on": today.isoformat(),
                           "label": f"《社情民意》{today.year}年第{issue_no}期"}
        extra["issue"] = fields["issue"]["label"]
    elif action == "report":
        level = data["level"]
        if level not in higher_levels(own_level):
            raise Invalid({"level": [f"只能向上级报送：{'、'.join(LEVELS[x] for x in higher_levels(own_level))}"]})
        if level in o["reported"]:
            raise Conflict(f"已向{LEVELS[level]}报送", current_state=o["state"])
        org = target_org(level, own_level=own_level, parent_org=parent_org, orgs=orgs)
        fields["reported"] = dict(o["reported"], **{level: {"on": today.isoformat(),
                                                            "target_org": org}})
        extra.update(level=level, target_org=org)
    elif action == "adopt":
        level = data["level"]
        if level != own_level and level not in o["reported"]:
            raise Invalid({"level": [f"尚未向{LEVELS[level]}报送"]})
        if level in o["adopted"]:
            raise Conflict(f"已记录{LEVELS[level]}采用", current_state=o["state"])
        fields["adopted"] = dict(o["adopted"], **{level: {"on": today.isoformat(),
                                                          "note": data.get("note")}})
        extra["level"] = level
    elif action == "instruct":
        level = data["level"]
        if level != own_level and level not in o["reported"]:
            raise Invalid({"level": [f"尚未向{LEVELS[level]}报送"]})
        entry = {"id": instruction_id, "level": level, "leader": data["leader"],
                 "text": data.get("text"), "on": today.isoformat()}
        fields["instructions"] = o["instructions"] + [entry]
        extra.update(level=level, instruction_id=instruction_id, leader=data["leader"])
    event = {"accept": "opinion.accepted", "reject": "opinion.rejected",
             "edit": "opinion.edited", "issue": "opinion.issued",
             "report": "opinion.reported", "adopt": "opinion.adopted",
             "instruct": "opinion.instructed"}[action]
    return fields, [(event, payload(dict(o, **fields), **extra))]


def received(forwarded, *, origin, opinion_id, org, today):
    """An item another platform reported up to this one, in the intake."""
    doc = {"_id": opinion_id, "org": org, "title": forwarded["title"],
           "content": forwarded["content"], "category": forwarded.get("category"),
           "author_member": None, "station_id": None, "source_request": None,
           "state": "submitted", "year": today.year, "submitted_on": today.isoformat(),
           "versions": [{"n": 1, "title": forwarded["title"], "content": forwarded["content"],
                         "by": f"org:{origin}", "on": today.isoformat()}],
           "issue": None, "reported": {}, "adopted": {}, "instructions": [], "reason": None,
           "source": {"org": origin, "opinion_id": forwarded["opinion_id"],
                      "author_member": forwarded.get("author_member"),
                      "author_name": forwarded.get("author_name")}}
    return doc, [("opinion.received", payload(doc, origin=origin))]


FEEDBACK_ACTIONS = ("report", "adopt", "instruct")


def sent_to(o, org):
    """True when this item was reported to platform ``org`` (which may then
    report it further, adopt it or instruct on it)."""
    return any(r.get("target_org") == org for r in (o.get("reported") or {}).values())


def linked(o, fields, action, data, *, parent_org, author_name=None):
    """The events for other platforms of ``action`` on ``o``: an item reported
    to the parent platform goes up the link (with its text and the author's
    name); a step this platform takes on an item a county reported goes back
    down to it as feedback. A city's parent is reached through the provincial
    adapter, not the link: ``parent_org`` is the linked parent only."""
    new = dict(o, **fields)
    out = []
    reported = (fields.get("reported") or {}).get(data.get("level") or "")
    if action == "report" and parent_org and reported and reported["target_org"] == parent_org:
        out.append(("opinion.forwarded", payload(new, content=new["content"],
                                                 author_name=author_name,
                                                 level=data["level"]), parent_org))
    source = new.get("source")
    if source and action in FEEDBACK_ACTIONS:
        out.append(("opinion.feedback", {
            "opinion_id": source["opinion_id"], "action": action, "level": data.get("level"),
            "leader": data.get("leader"), "text": data.get("text"), "note": data.get("note"),
            "title": new["title"], "year": new["year"]}, source["org"]))
    return out


def payload(o, **extra):
    """An item in events: the author credited, not the text (it may name citizens)."""
    body = {"opinion_id": o["_id"], "title": o["title"], "author_member": o["author_member"],
            "station_id": o.get("station_id"), "state": o["state"], "year": o["year"],
            "category": o.get("category")}
    body.update(extra)
    return body


OPINIONS = Aggregate("opinions", "社情民意", Visibility(
    "社情民意", See("member", "author_member"), See("station", "station_id")))
