"""Consultations (协商议事): the seven steps 选题 → 调研 → 协商 → 形成意见 → 报送 →
督促落实 → 反馈, then closed; participants, outcomes and follow-up items. Pure."""
from services.common.decisions import Aggregate, See, Visibility
from services.common.flow import Flow, Step
from services.common.problems import Conflict, Forbidden, Invalid

from .stations import is_staff

SOURCES = {"party_government": "党政点题", "citizens": "群众出题", "members": "委员荐题"}
STEPS = ("topic", "research", "consult", "opinions", "submitted", "implementing", "feedback")
STATE_LABELS = {"topic": "选题", "research": "调研", "consult": "协商",
                "opinions": "形成意见", "submitted": "报送", "implementing": "督促落实",
                "feedback": "反馈", "closed": "已办结"}
NEXT = dict(zip(STEPS, STEPS[1:] + ("closed",)))
# The station's staff run the local steps; the committee office submits to the
# party committee and government and follows up (报送 onwards).
OFFICE_STEPS = frozenset({"opinions", "submitted", "implementing", "feedback"})
FOLLOWUP_STATES = frozenset({"opinions", "submitted", "implementing"})
HELD = frozenset(STEPS[3:]) | {"closed"}   # the consultation meeting has taken place


def _mover(actor, c):
    if actor.is_admin:
        return True
    return c["state"] not in OFFICE_STEPS and bool(c.get("station_id")) and \
        is_staff(actor, c["station_id"])


def _follower(actor, c):
    return actor.is_admin or (bool(c.get("station_id")) and is_staff(actor, c["station_id"]))


FLOW = Flow("协商议事", STATE_LABELS, {
    "advance": Step(frozenset(STEPS), None, _mover, "进入下一步"),
    "add_followup": Step(FOLLOWUP_STATES, None, _follower, "添加督办事项"),
    "complete_followup": Step(FOLLOWUP_STATES | {"feedback"}, None, _follower,
                              "办结督办事项"),
})


def new_consultation(data, actor, *, consultation_id, org, station, members_found, today,
                     imported=False):
    source = data["source"]
    own = actor.ids("member")
    if source == "members":
        if not (actor.is_admin or own):
            raise Forbidden("委员荐题须由委员本人或政协办公室提出")
    elif not (actor.is_admin or (station and is_staff(actor, station["_id"]))):
        raise Forbidden("党政点题、群众出题由政协办公室或站点工作人员登记")
    errors = {}
    if data.get("station_id") and station is None:
        errors["station_id"] = ["站点不存在"]
    participants = list(dict.fromkeys(data.get("members") or ()))
    unknown = [m for m in participants if m not in members_found]
    if unknown:
        errors["members"] = [f"不是在任委员：{'、'.join(unknown)}"]
    elif station and not imported:   # history records who took part then
        errors.update(_strangers(participants, station))
    if errors:
        raise Invalid(errors)
    proposer = (sorted(own)[0] if own and source == "members" else None)
    doc = {"_id": consultation_id, "org": org, "title": data["title"], "source": source,
           "background": data.get("background"), "station_id": data.get("station_id"),
           "proposed_by": proposer, "members": participants,
           "others": list(data.get("others") or ()), "state": "topic",
           "year": today.year, "created_at": today.isoformat(), "held_on": None,
           "outcomes": [], "followups": {}, "feedback": None, "steps": [
               {"state": "topic", "at": today.isoformat(), "by": actor.sub}]}
    return doc, [("consultation.created", payload(doc))]


def act(c, action, data, actor, *, today, followup_id=None, members_found=None,
        station=None):
    FLOW.check(c, action, actor)
    if action == "advance":
        return _advance(c, data, actor, today, members_found or {}, station)
    if action == "add_followup":
        item = {"item": data["item"], "owner": data["owner"], "due": data["due"].isoformat(),
                "state": "open", "done_on": None, "note": None}
        followups = dict(c["followups"], **{followup_id: item})
        return {"followups": followups}, [("consultation.followup_added", payload(
            c, followup_id=followup_id, due=item["due"], owner=item["owner"]))]
    if action == "complete_followup":
        item = c["followups"].get(followup_id)
        if item is None:
            raise Invalid({"followup_id": ["督办事项不存在"]})
        if item["state"] == "done":
            raise Conflict("督办事项已办结", current_state="done")
        item = dict(item, state="done", done_on=today.isoformat(), note=data.get("note"))
        return {"followups": dict(c["followups"], **{followup_id: item})}, [
            ("consultation.followup_done", payload(c, followup_id=followup_id,
                                                   on_time=item["done_on"] <= item["due"]))]
    raise ValueError(action)


def _strangers(members, station):
    """A consultation at a station takes part with the station's own members
    (taking part credits their 履职档案)."""
    strangers = [m for m in members if m not in (station or {}).get("members", ())]
    return {"members": [f"不是本站点的委员：{'、'.join(strangers)}"]} if strangers else {}


def _advance(c, data, actor, today, members_found, station=None):
    state = c["state"]
    target = NEXT[state]
    fields, errors = {}, {}
    extra_members = [m for m in dict.fromkeys(data.get("members") or ())
                     if m not in c["members"]]
    unknown = [m for m in extra_members if m not in members_found]
    if unknown:
        errors["members"] = [f"不是在任委员：{'、'.join(unknown)}"]
    elif station is not None:   # not for imported history: who took part then
        errors.update(_strangers(extra_members, station))
    members = c["members"] + [m for m in extra_members if m in members_found]
    outcomes = list(data.get("outcomes") or ())
    if state == "consult" and not members:
        errors["members"] = ["协商须有委员参加"]
    if state == "opinions" and not (c["outcomes"] or outcomes):
        errors["outcomes"] = ["形成意见后才能报送，请填写协商成果"]
    if state == "implementing":
        open_items = [k for k, f in c["followups"].items() if f["state"] != "done"]
        if open_items:
            raise Conflict("督办事项尚未全部办结，不能进入反馈", current_state=state,
                           open_followups=sorted(open_items))
    if state == "feedback" and not data.get("feedback"):
        errors["feedback"] = ["请填写反馈情况"]
    if errors:
        raise Invalid(errors)
    fields["members"] = members
    if outcomes:
        fields["outcomes"] = c["outcomes"] + outcomes
    if data.get("feedback"):
        fields["feedback"] = data["feedback"]
    if data.get("others"):
        fields["others"] = c["others"] + list(data["others"])
    fields["state"] = target
    fields["steps"] = c["steps"] + [{"state": target, "at": today.isoformat(), "by": actor.sub}]
    new = dict(c, **fields)
    events = [("consultation.advanced", payload(new, step=target, previous=state))]
    if state == "consult":
        # the consultation meeting took place: it counts as an activity of
        # each member taking part (履职档案)
        fields["held_on"] = today.isoformat()
        events.append(("station.activity_held", {
            "activity_id": f"consultation:{c['_id']}", "source": "consultation",
            "station_id": c.get("station_id"), "title": c["title"], "members": members,
            "date": today.isoformat(), "year": today.year}))
    if target == "closed":
        events.append(("consultation.closed", payload(new)))
    return fields, events


# the office, the members taking part and the station holding it (like 社情民意);
# not citizens, units or other members
CONSULTATIONS = Aggregate("consultations", "协商议事", Visibility(
    "协商议事", See("member", "members"), See("member", "proposed_by"),
    See("station", "station_id")))


def payload(c, **extra):
    body = {"consultation_id": c["_id"], "title": c["title"], "source": c["source"],
            "station_id": c.get("station_id"), "state": c["state"], "year": c["year"],
            "members": c["members"]}
    body.update(extra)
    return body

