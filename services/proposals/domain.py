"""Proposal (提案) rules: the state machine, who may act, deadlines, reminders.

Pure: no I/O, no framework. ``act`` takes a proposal document, an action, its
data, the acting ``Actor``, the platform's ``Rules`` and today's date, and
returns the changed fields and the events to emit, or raises a problem:
403 when the actor may not do this to this proposal, 409 when the proposal's
state does not allow the action (naming the state and the allowed actions),
422 when the data breaks a rule.
"""
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from services.common.decisions import Aggregate, See, Visibility
from services.common.flow import Flow, Step
from services.common.problems import Conflict, Forbidden, Invalid
from services.common.workdays import WorkCalendar

STATES = (
    "draft", "cosigning", "submitted", "under_review", "returned", "registered", "merged",
    "converted_to_suggestion", "converted_to_opinion", "rejected", "assigned",
    "unit_returned", "reassigned", "in_handling", "answered", "awaiting_evaluation",
    "satisfied", "basically_satisfied", "dissatisfied", "rehandling", "closed", "forwarded", "withdrawn")
STATE_LABELS = {
    "draft": "草稿", "cosigning": "联名确认中", "submitted": "已提交", "under_review": "审查中",
    "returned": "已退回", "registered": "已立案", "merged": "已并案",
    "converted_to_suggestion": "转意见建议", "converted_to_opinion": "转社情民意",
    "rejected": "不予立案", "assigned": "已交办", "unit_returned": "单位退回",
    "reassigned": "已重新交办", "in_handling": "办理中", "answered": "已答复待审核",
    "awaiting_evaluation": "待评价", "satisfied": "满意", "basically_satisfied": "基本满意",
    "dissatisfied": "不满意", "rehandling": "二次办理", "closed": "已办结",
    "forwarded": "已转上级政协办理", "withdrawn": "已撤回"}
TERMINAL = frozenset({"merged", "converted_to_suggestion", "converted_to_opinion",
                      "rejected", "closed", "forwarded", "withdrawn"})
HANDLING = frozenset({"assigned", "reassigned", "in_handling", "rehandling"})
REGISTERED_ONWARD = frozenset({
    "registered", "assigned", "unit_returned", "reassigned", "in_handling", "answered",
    "awaiting_evaluation", "satisfied", "basically_satisfied", "dissatisfied",
    "rehandling", "closed"})
MERGE_TARGETS = REGISTERED_ONWARD - {"closed"}

CATEGORIES = {"economy": "经济建设", "politics": "政治建设", "culture": "文化建设",
              "livelihood": "社会民生", "ecology": "生态文明", "party": "党的建设",
              "other": "其他"}
KINDS = {"member": "委员提案", "collective": "集体提案", "linked": "下级政协转来的联动提案"}
COLLECTIVE_KINDS = {"party": "党派", "federation": "工商联", "sector": "界别",
                    "committee": "专委会", "group": "委员小组"}
TYPES = {"session": "大会提案", "interim": "平时提案"}
ANSWER_CATEGORIES = {"A": "已解决或采纳", "B": "正在解决或列入计划", "C": "因条件限制留作参考",
                     "D": "留作参考"}
RATINGS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}
DECISIONS = {"register": "registered", "merge": "merged",
             "convert_to_suggestion": "converted_to_suggestion",
             "convert_to_opinion": "converted_to_opinion", "reject": "rejected",
             "return": "returned", "forward": "forwarded"}
CONTENT_FIELDS = ("title", "situation", "analysis", "suggestions", "category", "attachments")
COLLECTIVE = "collective"  # the evaluator of a collective proposal


# --- who is acting --------------------------------------------------------
@dataclass(frozen=True)
class Actor:
    sub: str
    roles: frozenset = field(default_factory=frozenset)
    system: bool = False

    @classmethod
    def of(cls, sub, roles):
        return cls(sub=sub, roles=frozenset(roles))

    @classmethod
    def scanner(cls):
        return cls(sub="system:scan", roles=frozenset(), system=True)

    @property
    def admin(self):
        return "admin" in self.roles

    @property
    def reviewer(self):
        return "reviewer" in self.roles or self.admin

    def ids(self, kind):
        prefix = kind + ":"
        return {r[len(prefix):] for r in self.roles if r.startswith(prefix)}


def proposers(p):
    """Members who proposed ``p``: the lead and confirmed co-signers."""
    if p.get("kind") != "member":
        return []
    return [p["lead_member"]] + sorted(m for m, s in (p.get("cosigners") or {}).items()
                                       if s == "confirmed")


def evaluators(p):
    return proposers(p) if p.get("kind") == "member" else [COLLECTIVE]


def _is_proposer(actor, p):
    return p.get("kind") == "member" and p.get("lead_member") in actor.ids("member")


def _office(actor, p):
    return actor.admin


def _reviewer(actor, p):
    return actor.reviewer


def _proposer_or_office(actor, p):
    return actor.admin or _is_proposer(actor, p)


def _invited(actor, p):
    invited = {m for m, s in (p.get("cosigners") or {}).items() if s == "invited"}
    return bool(actor.ids("member") & invited)


def _lead_unit(actor, p):
    return p.get("lead_unit") in actor.ids("unit")


def _co_unit(actor, p):
    return bool(actor.ids("unit") & set(p.get("co_units") or ()))


def _assigned_unit(actor, p):
    return _lead_unit(actor, p) or _co_unit(actor, p)


def _evaluator(actor, p):
    return actor.admin or bool(actor.ids("member") & set(evaluators(p)))


def _system(actor, p):
    return actor.system or actor.admin


# action: the states it is allowed in, who may take it (and who that is, in Chinese)
_STEPS = {
    "update_draft": Step(frozenset({"draft", "returned"}), may=_proposer_or_office, who="提案人"),
    "submit": Step(frozenset({"draft"}), may=_proposer_or_office, who="提案人"),
    "withdraw": Step(frozenset({"draft", "returned"}), may=_proposer_or_office, who="提案人"),
    "confirm_cosign": Step(frozenset({"cosigning"}), may=_invited, who="受邀联名委员"),
    "decline_cosign": Step(frozenset({"cosigning"}), may=_invited, who="受邀联名委员"),
    "close_cosigning": Step(frozenset({"cosigning"}), may=_system, who="提案委"),
    "classify": Step(frozenset({"submitted"}), may=_reviewer, who="提案审查人员"),
    "propose": Step(frozenset({"under_review"}), may=_reviewer, who="提案审查人员"),
    "decide": Step(frozenset({"under_review"}), may=_reviewer, who="提案审查人员"),
    "resubmit": Step(frozenset({"returned"}), may=_proposer_or_office, who="提案人"),
    "assign": Step(frozenset({"registered"}), may=_office, who="提案委"),
    "object": Step(frozenset({"assigned", "reassigned"}), may=_assigned_unit, who="承办单位"),
    "reassign": Step(frozenset({"unit_returned"}), may=_office, who="提案委"),
    "start": Step(frozenset({"assigned", "reassigned"}), may=_lead_unit, who="主办单位"),
    "contact": Step(frozenset({"in_handling", "rehandling"}), may=_lead_unit, who="主办单位"),
    "co_opinion": Step(frozenset({"in_handling", "rehandling"}), may=_co_unit, who="协办单位"),
    "request_extension": Step(frozenset({"in_handling", "rehandling"}), may=_lead_unit, who="主办单位"),
    "approve_extension": Step(frozenset({"in_handling", "rehandling"}), may=_office, who="提案委"),
    "answer": Step(frozenset({"in_handling", "rehandling"}), may=_lead_unit, who="主办单位"),
    "release": Step(frozenset({"answered"}), may=_reviewer, who="提案审查人员"),
    "send_back": Step(frozenset({"answered"}), may=_reviewer, who="提案审查人员"),
    "evaluate": Step(frozenset({"awaiting_evaluation"}), may=_evaluator, who="提案人"),
    "rehandle": Step(frozenset({"dissatisfied"}), may=_office, who="提案委"),
    "close": Step(frozenset({"satisfied", "basically_satisfied", "dissatisfied"}), may=_office, who="提案委"),
    "mark_key": Step(REGISTERED_ONWARD, may=_office, who="提案委"),
    "supervise": Step(HANDLING | {"answered", "unit_returned"}, may=_office, who="提案委"),
    "mark_excellent": Step(frozenset({"closed"}), may=_office, who="提案委"),
}


def _pending_evaluators(p, actor):
    pending = [e for e in evaluators(p) if e not in (p.get("evaluations") or {})]
    return pending if actor.admin else [e for e in pending if e in actor.ids("member")]


def shown_answers(p, actor):
    """The answers ``actor`` may read: a draft answer (not yet released, and
    possibly sent back) only to staff and to the lead unit that wrote it."""
    answers = list(p.get("answers") or ())
    if actor.admin or actor.reviewer or _lead_unit(actor, p):
        return answers
    return [a for a in answers if a.get("released")]


def _waiting_co_units(p):
    """The co-handling units whose opinion the lead unit's answer still waits for."""
    return [u for u in p.get("co_units") or () if u not in (p.get("co_opinions") or {})]


def blocked(action, p, actor, today=None):
    """Why ``action`` cannot be done on ``p`` now although its state and the
    caller's role allow it: a problem to raise (403 or 409), or ``None`` when
    it can. One place for both the offer (``actions_for``) and the refusal
    (``act``), so that they never differ."""
    def conflict(detail, **extra):
        return Conflict(detail, current_state=p["state"], **extra)
    extension = (p.get("extension") or {}).get("state")
    stage = (p.get("review") or {}).get("stage")
    if action == "request_extension" and extension == "requested":
        return conflict("已有待审批的延期申请")
    if action == "approve_extension" and extension != "requested":
        return conflict("没有待审批的延期申请")
    if action == "object" and today is not None and \
            today.isoformat() > (p.get("deadlines") or {}).get("objection", "9999"):
        return conflict(f"异议期已于 {p['deadlines']['objection']} 结束，请按交办意见办理",
                        objection_due=p["deadlines"]["objection"])
    if action == "decide" and stage not in ("proposed", "final"):
        return conflict("须先完成初审分类和拟立案意见，才能作出审查决定", review_stage=stage)
    if action == "decide" and stage == "final" and not actor.admin:
        return Forbidden("有争议的提案须由提案委终审")
    if action == "evaluate" and not _pending_evaluators(p, actor):
        return conflict("您已评价过本提案" if not actor.admin else "全部提案人均已评价")
    if action == "rehandle" and p.get("round", 1) > 1:
        return conflict("二次办理后仍不满意的提案由提案委认定后办结")
    if action == "close" and p["state"] == "dissatisfied" and p.get("round", 1) < 2:
        return conflict("不满意的提案须先二次办理")
    if action == "answer" and (waiting := _waiting_co_units(p)):
        names = p.get("unit_names") or {}
        return conflict(f"协办单位{'、'.join(names.get(u, u) for u in waiting)}尚未提交协办意见，"
                        "收齐后才能答复", waiting_co_units=waiting)
    if action == "supervise" and not p.get("key"):
        return conflict("只有重点提案才记录督办")
    return None


FLOW = Flow("提案", STATE_LABELS, _STEPS, blocked=blocked)
ACTIONS = FLOW.steps


def actions_for(p, actor, today=None):
    """Exactly the actions ``actor`` can take on ``p`` now (``today`` for the
    ones bound to a date)."""
    return FLOW.actions_for(p, actor, today)


# --- the platform's rules ---------------------------------------------------
DEFAULT_DEADLINES = {
    "cosign": {"working_days": 5}, "objection": {"working_days": 5},
    "first_contact": {"working_days": 15}, "answer": {"months": 3},
    "answer_difficult": {"months": 6}, "rehandle": {"months": 1},
    "evaluation": {"working_days": 15}}


@dataclass
class Rules:
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    deadlines: dict = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    grounds: tuple = ()
    windows: tuple = ()              # ({"session", "opens", "closes"}, ...)
    remind_before: tuple = (10, 3)   # working days before a due date
    remind_after: tuple = (1, 5, 10)  # working days after it

    @classmethod
    def from_config(cls, conf):
        conf = conf or {}
        deadlines = dict(DEFAULT_DEADLINES)
        deadlines.update(conf.get("deadlines") or {})
        reminders = conf.get("reminders") or {}
        return cls(calendar=WorkCalendar.from_config(conf.get("calendar")),
                   deadlines=deadlines, grounds=tuple(conf.get("rejection_grounds") or ()),
                   windows=tuple(conf.get("session_windows") or ()),
                   remind_before=tuple(reminders.get("before", (10, 3))),
                   remind_after=tuple(reminders.get("after", (1, 5, 10))))

    def due(self, start, kind):
        return self.calendar.due(start, self.deadlines[kind]).isoformat()

    def window(self, today):
        for w in self.windows:
            if str(w["opens"]) <= today.isoformat() <= str(w["closes"]):
                return w
        return None


@dataclass
class Context:
    """What ``act`` may need beyond the proposal: looked up by the service."""
    members: dict = field(default_factory=dict)   # id -> public member view
    units: dict = field(default_factory=dict)     # id -> unit
    merge_target: dict = None
    next_number: object = None                    # () -> int, only on registration
    parent_org: str = None                        # where a forwarded proposal goes


def merge_target_id(p, data):
    """The proposal a merge decision names: in the data or in the proposal."""
    if data.get("merged_into"):
        return data["merged_into"]
    if data.get("decision") not in (None, "merge"):
        return None
    return ((p.get("review") or {}).get("proposed") or {}).get("merged_into")


# --- creating ---------------------------------------------------------------
def member_errors(ids, members, field_name):
    errors = []
    for mid in ids:
        m = members.get(mid)
        if m is None:
            errors.append(f"委员 {mid} 不存在")
        elif m.get("status") != "active":
            errors.append(f"委员 {mid} 不是在任委员")
    return {field_name: errors} if errors else {}


def new_proposal(data, actor, *, proposal_id, org, today, members):
    """A draft from validated input ``data``; ``members`` has the lead and
    co-signers looked up in the members service."""
    kind = data["kind"]
    errors = {}
    if kind == "member":
        own = actor.ids("member")
        lead = data.get("lead_member") or (sorted(own)[0] if len(own) == 1 else None)
        if not lead:
            errors["lead_member"] = ["委员提案须指明领衔委员"]
        elif not actor.admin and lead not in own:
            raise Forbidden("只能以本人名义提出委员提案")
        else:
            errors.update(member_errors([lead], members, "lead_member"))
        cosigners = [m for m in dict.fromkeys(data.get("cosigners") or ()) if m != lead]
        errors.update(member_errors(cosigners, members, "cosigners"))
        if data.get("collective"):
            errors["collective"] = ["委员提案不填写集体提案单位"]
    else:
        if not actor.admin:
            raise Forbidden("集体提案由政协办公室代为录入")
        lead, cosigners = None, []
        if not data.get("collective"):
            errors["collective"] = ["集体提案须填写提案单位"]
        if data.get("cosigners"):
            errors["cosigners"] = ["集体提案没有联名委员"]
    if errors:
        raise Invalid(errors)
    doc = _document(data, proposal_id=proposal_id, org=org, kind=kind, today=today,
                    state="draft", lead_member=lead,
                    cosigners={m: "pending" for m in cosigners},
                    collective=data.get("collective"),
                    people=[lead] + cosigners if lead else [])
    _log(doc, "create", None, "draft", actor, today)
    return doc, [("proposal.drafted", payload(doc))]


def _document(content, *, proposal_id, org, kind, today, state, **fields):
    """A new proposal document: every field at its start value, the content
    fields from ``content``, then ``fields``."""
    doc = {"_id": proposal_id, "org": org, "kind": kind, "type": content.get("type") or "interim",
           "session": None, "year": today.year, "number": None,
           "lead_member": None, "cosigners": {}, "collective": None, "people": [],
           "state": state, "created_at": today.isoformat(), "review": {}, "decision": None,
           "merged_into": None, "lead_unit": None, "co_units": [], "handlers": [],
           "deadlines": {}, "reminders": {}, "overdue": 0, "round": 1, "key": 0,
           "excellent": 0, "supervisors": [], "supervision": [], "objections": [],
           "co_opinions": {}, "answers": [], "evaluations": {}, "history": []}
    for name in CONTENT_FIELDS:
        doc[name] = content.get(name) if name != "attachments" else \
            list(content.get(name) or [])
    doc.update(fields)
    return doc


# --- 联动提案: a county proposal beyond county remit handled by the city --------
def forwarded_id(parent_org, proposal_id):
    """The id of ``proposal_id``'s forwarded copy at ``parent_org``: both
    sides know it, so the link is kept both ways from the start."""
    return f"{parent_org}-{proposal_id}"


def forward_payload(p, names):
    """What the parent platform receives: the content and who proposed it
    (names only: the proposers are members of another committee)."""
    proposer = (p.get("collective") or {}).get("name") if p["kind"] == "collective" else \
        names.get(p.get("lead_member"), p.get("lead_member"))
    return dict(payload(p), **{k: p.get(k) for k in CONTENT_FIELDS},
                proposer=proposer,
                cosigners=[names.get(m, m) for m in proposers(p)[1:]],
                reason=(p.get("forwarded") or {}).get("reason"))


def received(body, *, origin, org, today):
    """A proposal forwarded by the lower platform ``origin``: it enters this
    platform's review as submitted; ``source`` links it to the original."""
    doc = _document(dict(body, type="interim"), proposal_id=forwarded_id(org, body["proposal_id"]),
                    org=org, kind="linked", today=today, state="submitted",
                    submitted_at=today.isoformat(),
                    source={"org": origin, "proposal_id": body["proposal_id"],
                            "number": body.get("number"), "year": body.get("year"),
                            "proposer": body.get("proposer"),
                            "cosigners": list(body.get("cosigners") or []),
                            "reason": body.get("reason")})
    _log(doc, "receive", None, "submitted", Actor.of(f"org:{origin}", []), today)
    return doc, [("proposal.received", payload(doc, source_org=origin,
                                               source_proposal_id=body["proposal_id"]))]


FEEDBACK_FIELDS = ("state", "number", "lead_unit", "answer_category", "evaluation", "key")

# who sees a proposal: the office and reviewers all; a unit those it handles;
# a member those they proposed or co-signed
PROPOSALS = Aggregate("proposals", "提案", Visibility(
    "提案", See("unit", "handlers"), See("member", "people")))


def forwards(before, after, parent_org):
    """True when this change sends the proposal up the link (a county's
    decision to forward; a city's goes to the provincial adapter instead)."""
    return bool(parent_org) and after["state"] == "forwarded" and before["state"] != "forwarded"


def sent_to(p, org):
    """True when this proposal was forwarded to platform ``org`` (whose
    progress on it is then shown here)."""
    return (p.get("forwarded") or {}).get("to") == org


def linked(before, after, *, parent_org, names=None, unit_names=None):
    """The events for other platforms of a change from ``before`` to
    ``after``: a forward goes up to ``parent_org`` (the linked parent, None
    for a city) with the proposers' ``names``; progress on a proposal a lower
    platform forwarded goes back down to it."""
    out = []
    if forwards(before, after, parent_org):
        out.append(("proposal.referred", forward_payload(after, names or {}),
                    after["forwarded"]["to"]))
    back = feedback(before, after, unit_names or {})
    if back:
        out.append(("proposal.feedback", back, after["source"]["org"]))
    return out


def feedback(before, after, unit_names):
    """What the origin platform learns of a forwarded proposal's progress:
    ``None`` unless something it shows changed. Released answers only."""
    if not after.get("source"):
        return None
    released = [a for a in after.get("answers") or () if a.get("released")]
    shown = released[-1] if released else None
    was = [a for a in before.get("answers") or () if a.get("released")]
    if all(before.get(k) == after.get(k) for k in FEEDBACK_FIELDS) and len(was) == len(released) \
            and province_progress(before) == province_progress(after):
        return None
    return {"proposal_id": after["source"]["proposal_id"], "upstream_id": after["_id"],
            "state": after["state"], "state_label": STATE_LABELS[after["state"]],
            "number": after.get("number"), "key": bool(after.get("key")),
            "lead_unit": unit_names.get(after.get("lead_unit"), after.get("lead_unit")),
            "answer": None if shown is None else {
                "category": shown["category"], "category_label":
                ANSWER_CATEGORIES[shown["category"]], "text": shown["text"],
                "on": shown.get("released_on") or shown["on"], "round": shown["round"]},
            "evaluation": after.get("evaluation"),
            "decision": {k: (after.get("decision") or {}).get(k)
                         for k in ("decision", "ground", "reason")}
            if after.get("decision") else None,
            "on": (after.get("history") or [{}])[-1].get("on"),
            "province": province_progress(after)}


def province_progress(p):
    """The provincial committee's progress on a proposal this platform
    forwarded on to it (what the county that first sent it is shown), or None."""
    upstream = p.get("upstream") or {}
    if upstream.get("by") != "province":
        return None
    return {k: upstream.get(k) for k in ("state", "state_label", "text", "on")}


def upstream_change(p, body, seq):
    """The original's view of the parent's progress: ``(fields, events)``,
    nothing for a step older than what is shown (per-aggregate ``seq``)."""
    if (p.get("upstream") or {}).get("seq", 0) >= seq:
        return {}, []
    upstream = dict({k: v for k, v in body.items() if k != "proposal_id"}, seq=seq)
    return {"upstream": upstream}, [("proposal.upstream_progressed", payload(
        dict(p, upstream=upstream), upstream_state=body["state"],
        answer_category=(body.get("answer") or {}).get("category")))]


def imported(doc):
    """The one event of a proposal created by a history import (it feeds the
    履职档案 and the figures)."""
    return {}, [("proposal.imported", payload(
        doc, actions=len(doc["history"]) - 1, submitted=bool(doc.get("submitted_at")),
        registered=bool(doc.get("registered_at")), excellent=bool(doc.get("excellent"))))]


def payload(p, **extra):
    """Event payload: identifiers and public facts only, never contacts."""
    body = {"proposal_id": p["_id"], "number": p.get("number"), "title": p.get("title"),
            "state": p["state"], "kind": p["kind"], "type": p["type"], "year": p["year"],
            "category": p.get("category"), "lead_member": p.get("lead_member"),
            "proposers": proposers(p), "lead_unit": p.get("lead_unit"),
            "co_units": list(p.get("co_units") or []), "key": bool(p.get("key"))}
    body.update(extra)
    return body


def _log(p, action, before, after, actor, today, note=None):
    entry = {"action": action, "from": before, "to": after, "on": today.isoformat(),
             "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "actor": actor.sub}
    if note:
        entry["note"] = note
    p["history"] = list(p.get("history") or []) + [entry]


# --- acting -----------------------------------------------------------------
def act(p, action, data, actor, rules, today, ctx=None):
    """Apply ``action``; returns ``(fields, events)`` with ``fields`` the
    top-level fields to set and ``events`` a list of ``(type, payload)``."""
    if action not in ACTIONS:
        raise Invalid({"action": ["未知的操作"]})
    FLOW.check(p, action, actor, today)
    new = dict(p)
    events = _HANDLERS[action](new, dict(data or {}), actor, rules, today, ctx or Context())
    if new["state"] in STATES:
        _log(new, action, p["state"], new["state"], actor, today, (data or {}).get("reason"))
    fields = {k: v for k, v in new.items() if k not in p or p[k] != v}
    return fields, [(t, payload(new, **extra)) for t, extra in events]


def _need(data, name, message="必填字段"):
    value = data.get(name)
    if value in (None, "", []):
        raise Invalid({name: [message]})
    return value


def _update_draft(p, data, actor, rules, today, ctx):
    for name in CONTENT_FIELDS:
        if name in data:
            p[name] = data[name]
    return [("proposal.draft_updated", {})]


def _content_errors(p):
    missing = [n for n in ("title", "situation", "analysis", "suggestions", "category")
               if not p.get(n)]
    return {n: ["提交前必须填写"] for n in missing}


def _submit(p, data, actor, rules, today, ctx):
    errors = _content_errors(p)
    if p["kind"] == "member":
        errors.update(member_errors([p["lead_member"]], ctx.members, "lead_member"))
    if p["type"] == "session":
        window = rules.window(today)
        if window is None:
            errors["type"] = ["不在大会提案提交期内，请提交平时提案"]
        else:
            p["session"] = window["session"]
    if errors:
        raise Invalid(errors)
    p["year"] = today.year
    p["submitted_at"] = today.isoformat()
    if p["cosigners"]:
        p["cosigners"] = {m: "invited" for m in p["cosigners"]}
        p["deadlines"] = dict(p["deadlines"], cosign=rules.due(today, "cosign"))
        p["state"] = "cosigning"
        return [("proposal.cosign_requested",
                 {"invited": sorted(p["cosigners"]), "due": p["deadlines"]["cosign"]})]
    p["state"] = "submitted"
    return [("proposal.submitted", {})]


def _cosigning_done(p, events):
    if any(s == "invited" for s in p["cosigners"].values()):
        return events
    p["state"] = "submitted"
    p["deadlines"] = {k: v for k, v in p["deadlines"].items() if k != "cosign"}
    return events + [("proposal.submitted", {})]


def _reply_cosign(p, actor, status):
    mine = actor.ids("member") & {m for m, s in p["cosigners"].items() if s == "invited"}
    member = sorted(mine)[0]
    p["cosigners"] = dict(p["cosigners"], **{member: status})
    return member


def _confirm_cosign(p, data, actor, rules, today, ctx):
    member = _reply_cosign(p, actor, "confirmed")
    return _cosigning_done(p, [("proposal.cosign_confirmed", {"member": member})])


def _decline_cosign(p, data, actor, rules, today, ctx):
    member = _reply_cosign(p, actor, "declined")
    p["people"] = [m for m in p["people"] if m != member]
    return _cosigning_done(p, [("proposal.cosign_declined", {"member": member})])


def _withdraw(p, data, actor, rules, today, ctx):
    """A draft (or one returned to its proposer) is withdrawn: it leaves the
    lists of work and counts nowhere."""
    p["state"] = "withdrawn"
    p["withdrawn"] = {"on": today.isoformat(), "reason": data.get("reason")}
    return [("proposal.withdrawn", {"reason": data.get("reason")})]


def _close_cosigning(p, data, actor, rules, today, ctx):
    dropped = sorted(m for m, s in p["cosigners"].items() if s == "invited")
    p["cosigners"] = {m: ("dropped" if s == "invited" else s)
                      for m, s in p["cosigners"].items()}
    p["people"] = [m for m in p["people"] if m not in dropped]
    return _cosigning_done(p, [("proposal.cosign_closed", {"dropped": dropped})])


def _classify(p, data, actor, rules, today, ctx):
    if data.get("category"):
        p["category"] = data["category"]
    p["review"] = {"stage": "classified", "initial": {
        "by": actor.sub, "on": today.isoformat(), "category": p["category"],
        "note": data.get("note")}}
    p["state"] = "under_review"
    return [("proposal.review_started", {"stage": "classified"})]


def _decision_errors(data, rules, ctx, p):
    decision = data.get("decision")
    if decision not in DECISIONS:
        return {"decision": ["取值应为：" + "、".join(DECISIONS)]}
    errors = {}
    if decision == "reject" and data.get("ground") not in rules.grounds:
        errors["ground"] = ["不予立案须选择一项规定的理由：" + "；".join(rules.grounds)]
    if decision == "return" and not data.get("reason"):
        errors["reason"] = ["退回须写明理由"]
    if decision == "forward":
        if not ctx.parent_org:
            errors["decision"] = ["本级政协没有上级平台，不能转报"]
        elif not data.get("reason"):
            errors["reason"] = ["转报上级政协须写明超出本级职权的理由"]
    if decision == "merge":
        target = ctx.merge_target
        if not data.get("merged_into"):
            errors["merged_into"] = ["并案须指明并入的提案"]
        elif target is None:
            errors["merged_into"] = ["并入的提案不存在"]
        elif target["_id"] == p["_id"]:
            errors["merged_into"] = ["不能并入本提案"]
        elif target["state"] not in MERGE_TARGETS:
            errors["merged_into"] = ["只能并入已立案且未办结的提案"]
    return errors


def _propose(p, data, actor, rules, today, ctx):
    errors = _decision_errors(data, rules, ctx, p)
    if errors:
        raise Invalid(errors)
    disputed = bool(data.get("disputed"))
    proposed = {k: data.get(k) for k in ("decision", "ground", "reason", "merged_into",
                                         "note")}
    proposed.update(by=actor.sub, on=today.isoformat())
    p["review"] = dict(p["review"], stage="final" if disputed else "proposed",
                       proposed=proposed, disputed=int(disputed))
    return [("proposal.registration_proposed",
             {"decision": data["decision"], "disputed": disputed})]


def _decide(p, data, actor, rules, today, ctx):
    review = p.get("review") or {}
    if review.get("stage") not in ("proposed", "final"):
        raise Conflict("须先完成初审分类和拟立案意见，才能作出审查决定",
                       current_state=p["state"], review_stage=review.get("stage"),
                       allowed_actions=["propose"])
    proposed = review.get("proposed") or {}
    data = {**{k: v for k, v in proposed.items() if k not in ("by", "on")},
            **{k: v for k, v in data.items() if v is not None}}
    # changing the proposed decision, or its merge target, ground or reason, is
    # a different decision: the office's final review, not a reviewer's
    changed = [k for k in ("decision", "merged_into", "ground", "reason")
               if data.get(k) != proposed.get(k)]
    final = review.get("stage") == "final" or bool(changed)
    if final and not actor.admin:
        raise Forbidden("有争议或改变拟办意见的提案须由提案委终审")
    errors = _decision_errors(data, rules, ctx, p)
    if errors:
        raise Invalid(errors)
    decision = data["decision"]
    p["decision"] = {"decision": decision, "ground": data.get("ground"),
                     "reason": data.get("reason"), "final_review": int(final),
                     "by": actor.sub, "on": today.isoformat()}
    p["review"] = dict(review, stage="decided")
    p["state"] = DECISIONS[decision]
    extra = {"decision": decision, "final_review": final}
    if decision == "register":
        p["number"] = ctx.next_number() if ctx.next_number else None
        p["registered_at"] = today.isoformat()
        extra["number"] = p["number"]
    elif decision == "merge":
        p["merged_into"] = data["merged_into"]
        extra["merged_into"] = data["merged_into"]
    elif decision == "reject":
        extra["ground"] = data["ground"]
    elif decision == "return":
        extra["reason"] = data["reason"]
    elif decision == "forward":
        p["forwarded"] = {"to": ctx.parent_org, "on": today.isoformat(),
                          "reason": data["reason"],
                          "proposal_id": forwarded_id(ctx.parent_org, p["_id"])}
        p["upstream"] = {"state": "submitted", "state_label": STATE_LABELS["submitted"]}
        extra.update(to=ctx.parent_org, reason=data["reason"])
    if decision != "return":
        p["closed_at"] = today.isoformat() if p["state"] in TERMINAL else None
    return [(f"proposal.{p['state']}", extra)]


def _resubmit(p, data, actor, rules, today, ctx):
    errors = _content_errors(p)
    if errors:
        raise Invalid(errors)
    p["review"] = {}
    p["decision"] = None
    p["state"] = "submitted"
    p["submitted_at"] = p.get("submitted_at") or today.isoformat()
    return [("proposal.resubmitted", {}), ("proposal.submitted", {"resubmitted": True})]


def _units(p, data, ctx):
    lead = data.get("lead_unit")
    co = [u for u in dict.fromkeys(data.get("co_units") or ()) if u != lead]
    errors = {}
    if not lead:
        errors["lead_unit"] = ["必须指定主办单位"]
    elif lead not in ctx.units:
        errors["lead_unit"] = [f"承办单位 {lead} 不存在或已停用"]
    unknown = [u for u in co if u not in ctx.units]
    if unknown:
        errors["co_units"] = [f"承办单位 {u} 不存在或已停用" for u in unknown]
    if errors:
        raise Invalid(errors)
    return lead, co


def _hand_over(p, data, rules, today, ctx, state):
    lead, co = _units(p, data, ctx)
    p["lead_unit"], p["co_units"] = lead, co
    p["handlers"] = [lead] + co
    p["unit_names"] = {u: ctx.units[u].get("name") or u for u in p["handlers"]}
    p["difficult"] = int(bool(data.get("difficult")))
    p["routing"] = data.get("routing")
    p["assigned_at"] = today.isoformat()
    p["deadlines"] = {
        "objection": rules.due(today, "objection"),
        "first_contact": rules.due(today, "first_contact"),
        "answer": rules.due(today, "answer_difficult" if p["difficult"] else "answer")}
    p["co_opinions"] = {}
    p["state"] = state
    return {"lead_unit": lead, "co_units": co, "deadlines": p["deadlines"],
            "routing": data.get("routing")}


def _assign(p, data, actor, rules, today, ctx):
    return [("proposal.assigned", _hand_over(p, data, rules, today, ctx, "assigned"))]


def _reassign(p, data, actor, rules, today, ctx):
    return [("proposal.reassigned", _hand_over(p, data, rules, today, ctx, "reassigned"))]


def _object(p, data, actor, rules, today, ctx):
    reason = _need(data, "reason", "提出异议须写明理由")
    if today.isoformat() > p["deadlines"]["objection"]:
        raise Conflict(f"异议期已于 {p['deadlines']['objection']} 结束，请按交办意见办理",
                       current_state=p["state"], objection_due=p["deadlines"]["objection"],
                       allowed_actions=actions_for(p, actor))
    unit = sorted(actor.ids("unit") & set(p["handlers"]))[0]
    p["objections"] = list(p["objections"]) + [
        {"unit": unit, "reason": reason, "on": today.isoformat()}]
    p["state"] = "unit_returned"
    return [("proposal.unit_objected", {"unit": unit})]


def _start(p, data, actor, rules, today, ctx):
    p["state"] = "in_handling"
    p["started_at"] = today.isoformat()
    return [("proposal.handling_started", {})]


def _contact(p, data, actor, rules, today, ctx):
    method = _need(data, "method")
    if not p.get("first_contact_at"):
        p["first_contact_at"] = today.isoformat()
    p["contacts"] = list(p.get("contacts") or []) + [
        {"method": method, "on": today.isoformat(), "note": data.get("note")}]
    return [("proposal.proposer_contacted", {"method": method})]


def _co_opinion(p, data, actor, rules, today, ctx):
    text = _need(data, "text", "协办意见不能为空")
    unit = sorted(actor.ids("unit") & set(p["co_units"]))[0]
    p["co_opinions"] = dict(p["co_opinions"], **{unit: {"text": text,
                                                        "on": today.isoformat()}})
    return [("proposal.co_opinion_given", {"unit": unit})]


def _request_extension(p, data, actor, rules, today, ctx):
    reason = _need(data, "reason", "申请延期须写明理由")
    days = data.get("working_days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 130:
        raise Invalid({"working_days": ["延期天数应为 1 到 130 个工作日"]})
    if (p.get("extension") or {}).get("state") == "requested":
        raise Conflict("已有待审批的延期申请", current_state=p["state"],
                       allowed_actions=actions_for(p, actor))
    p["extension"] = {"state": "requested", "working_days": days, "reason": reason,
                      "on": today.isoformat()}
    return [("proposal.extension_requested", {"working_days": days})]


def _approve_extension(p, data, actor, rules, today, ctx):
    ext = p.get("extension") or {}
    if ext.get("state") != "requested":
        raise Conflict("没有待审批的延期申请", current_state=p["state"],
                       allowed_actions=actions_for(p, actor))
    approve = data.get("approve", True)
    ext = dict(ext, state="approved" if approve else "refused", decided_on=today.isoformat())
    p["extension"] = ext
    if approve:
        due = rules.calendar.add(date.fromisoformat(p["deadlines"]["answer"]),
                                 ext["working_days"])
        p["deadlines"] = dict(p["deadlines"], answer=due.isoformat())
        if due >= today:
            p["overdue"] = 0
    return [("proposal.extension_approved" if approve else "proposal.extension_refused",
             {"answer_due": p["deadlines"]["answer"]})]


def _answer(p, data, actor, rules, today, ctx):
    errors = {}
    if data.get("category") not in ANSWER_CATEGORIES:
        errors["category"] = ["答复须标明类别：A、B、C 或 D"]
    if not data.get("text"):
        errors["text"] = ["答复内容不能为空"]
    if errors:
        raise Invalid(errors)
    answer = {"round": p["round"], "category": data["category"], "text": data["text"],
              "unit": p["lead_unit"], "on": today.isoformat(), "released": 0}
    p["answers"] = list(p["answers"]) + [answer]
    p["state"] = "answered"
    return [("proposal.answered", {"answer_category": data["category"],
                                   "round": p["round"]})]


def _release(p, data, actor, rules, today, ctx):
    answers = list(p["answers"])
    answers[-1] = dict(answers[-1], released=1, released_on=today.isoformat())
    p["answers"] = answers
    if not p.get("released_at"):
        p["released_at"] = today.isoformat()
        p["on_time"] = int(today.isoformat() <= p["deadlines"]["answer"])
    p["answer_category"] = answers[-1]["category"]
    p["evaluations"] = {}
    p["deadlines"] = dict(p["deadlines"], evaluation=rules.due(today, "evaluation"))
    p["overdue"] = 0
    p["state"] = "awaiting_evaluation"
    return [("proposal.answer_released", {"answer_category": p["answer_category"],
                                          "round": p["round"],
                                          "evaluators": evaluators(p),
                                          "evaluation_due": p["deadlines"]["evaluation"]})]


def _send_back(p, data, actor, rules, today, ctx):
    reason = _need(data, "reason", "退回答复须写明理由")
    p["answers"] = list(p["answers"][:-1])
    p["state"] = "rehandling" if p["round"] > 1 else "in_handling"
    return [("proposal.answer_sent_back", {"reason": reason})]


def _evaluate(p, data, actor, rules, today, ctx):
    rating = data.get("rating")
    if rating not in RATINGS:
        raise Invalid({"rating": ["评价应为：满意、基本满意 或 不满意"]})
    pending = [e for e in evaluators(p) if e not in p["evaluations"]]
    if actor.admin and data.get("evaluator"):
        evaluator = data["evaluator"]
        if evaluator not in evaluators(p):
            raise Invalid({"evaluator": ["不是本提案的提案人"]})
    else:
        mine = [e for e in pending if e in actor.ids("member")]
        if not mine and p["kind"] == "member" and not actor.admin:
            raise Conflict("您已评价过本提案", current_state=p["state"],
                           allowed_actions=actions_for(p, actor))
        evaluator = mine[0] if mine else (pending[0] if pending else None)
    if evaluator not in pending:
        raise Conflict(f"{evaluator} 已评价过本提案", current_state=p["state"],
                       allowed_actions=actions_for(p, actor))
    p["evaluations"] = dict(p["evaluations"], **{evaluator: {
        "rating": rating, "comment": data.get("comment"), "on": today.isoformat(),
        "round": p["round"]}})
    extra = {"evaluator": evaluator, "rating": rating, "round": p["round"], "complete": False}
    if all(e in p["evaluations"] for e in evaluators(p)):
        ratings = {v["rating"] for v in p["evaluations"].values()}
        outcome = next(r for r in ("dissatisfied", "basically_satisfied", "satisfied")
                       if r in ratings)
        p["state"] = outcome
        p["evaluation"] = outcome
        extra.update(complete=True, outcome=outcome)
    return [("proposal.evaluated", extra)]


def _rehandle(p, data, actor, rules, today, ctx):
    p["round"] += 1
    p["deadlines"] = dict(p["deadlines"], answer=rules.due(today, "rehandle"))
    p["state"] = "rehandling"
    return [("proposal.rehandling", {"round": p["round"],
                                     "answer_due": p["deadlines"]["answer"]})]


def _close(p, data, actor, rules, today, ctx):
    p["closed_at"] = today.isoformat()
    outcome = p["state"]
    p["state"] = "closed"
    return [("proposal.closed", {"evaluation": outcome})]


def _mark_key(p, data, actor, rules, today, ctx):
    leaders = [s for s in dict.fromkeys(data.get("supervisors") or ()) if s]
    if not leaders:
        raise Invalid({"supervisors": ["重点提案须确定督办领导"]})
    p["key"] = 1
    p["supervisors"] = leaders
    p["key_selected_at"] = today.isoformat()
    return [("proposal.key_selected", {"supervisors": leaders})]


def _supervise(p, data, actor, rules, today, ctx):
    leader = data.get("leader")
    if leader not in p["supervisors"]:
        raise Invalid({"leader": ["应为本提案的督办领导之一：" + "、".join(p["supervisors"])]})
    p["supervision"] = list(p["supervision"]) + [
        {"leader": leader, "note": data.get("note"), "on": today.isoformat()}]
    return [("proposal.supervised", {"leader": leader})]


def _mark_excellent(p, data, actor, rules, today, ctx):
    p["excellent"] = 1
    return [("proposal.excellent_selected", {})]


_HANDLERS = {name: globals()["_" + name] for name in ACTIONS}


# --- reminders (催办) ---------------------------------------------------------
def _open_deadlines(p):
    d = p.get("deadlines") or {}
    state = p["state"]
    out = []
    if state in HANDLING and not p.get("first_contact_at") and d.get("first_contact"):
        out.append(("first_contact", d["first_contact"]))
    if state in HANDLING and d.get("answer"):
        out.append(("answer", d["answer"]))
    if state == "awaiting_evaluation" and d.get("evaluation"):
        out.append(("evaluation", d["evaluation"]))
    return out


def scan(p, rules, today):
    """What the daily scan does to ``p`` today: ``(fields, events)``, both
    empty when nothing is due. Each reminder is keyed by deadline, due date and
    offset and sent once; after an outage only the latest one due is sent."""
    if p["state"] == "cosigning" and p["deadlines"].get("cosign", "9999") < today.isoformat():
        return act(p, "close_cosigning", {}, Actor.scanner(), rules, today)
    reminders = dict(p.get("reminders") or {})
    events = []
    overdue = 0
    for kind, due_text in _open_deadlines(p):
        due = date.fromisoformat(due_text)
        left = rules.calendar.between(today, due)
        if today > due:
            overdue = 1
        marks = [(f"{kind}:{due_text}:-{n}", -n) for n in rules.remind_before] + \
                [(f"{kind}:{due_text}:+{n}", n) for n in rules.remind_after]
        reached = [(key, n) for key, n in marks if -left >= n and key not in reminders]
        if not reached:
            continue
        for key, _ in reached:
            reminders[key] = today.isoformat()
        _, latest = max(reached, key=lambda kn: kn[1])
        events.append(("proposal.reminder_due", {
            "deadline": kind, "due": due_text, "working_days_left": left,
            "after_due": today > due, "supervisors": list(p.get("supervisors") or []),
            "evaluators": evaluators(p) if kind == "evaluation" else []}))
    fields = {}
    if reminders != (p.get("reminders") or {}):
        fields["reminders"] = reminders
    if overdue != p.get("overdue", 0):
        fields["overdue"] = overdue
        if overdue:
            events.append(("proposal.overdue", {"deadlines": {
                k: v for k, v in _open_deadlines(p) if v < today.isoformat()}}))
    new = dict(p, **fields)
    return fields, [(t, payload(new, **extra)) for t, extra in events]


# --- handling units (承办单位) -------------------------------------------------
UNITS = Aggregate("units", "承办单位")   # contacts are hidden by the view, not the path


def unit_payload(doc):
    """A unit in events: no contact people."""
    return {"unit_id": doc["_id"], "name": doc["name"], "kind": doc["kind"],
            "topics": doc.get("topics") or [], "active": bool(doc.get("active"))}


def new_unit(data, unit_id):
    doc = dict(data, _id=unit_id, active=int(data["active"]))
    return doc, [("unit.created", unit_payload(doc))]


def update_unit(unit, data):
    """The office changed a unit: (fields, events), nothing when nothing changed."""
    data = dict(data)
    if "active" in data:
        data["active"] = int(data["active"])
    fields = {k: v for k, v in data.items() if unit.get(k) != v}
    if not fields:
        return {}, []
    return fields, [("unit.updated", unit_payload(dict(unit, **fields)))]
