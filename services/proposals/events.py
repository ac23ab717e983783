"""The events the proposals service emits (see services/common/events.py)."""
from marshmallow import fields, validate

from services.common.events import Payload, Registry
from services.common.names import DOWN, UP

from . import domain

EVENTS = Registry("proposals")


def Text(**kw):
    return fields.String(allow_none=True, **kw)


def Ids(**kw):
    return fields.List(fields.String(), **kw)


def State(**kw):
    return fields.String(validate=validate.OneOf(domain.STATES), **kw)


def AnswerCategory(**kw):
    return fields.String(validate=validate.OneOf(list(domain.ANSWER_CATEGORIES)), **kw)


def Day(**kw):
    return fields.Date(**kw)


class ProposalFacts(Payload):
    """A proposal's public facts; each type adds the fields of its action.
    Never contacts; the content itself only in proposal.referred."""
    proposal_id = fields.String(required=True)
    number = fields.Integer(allow_none=True, required=True)
    title = Text(required=True, validate=validate.Length(max=50))
    state = State(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("member", "collective", "linked")),
                         metadata={"description": "linked: forwarded by a lower platform"})
    type = fields.String(required=True, validate=validate.OneOf(("session", "interim")))
    year = fields.Integer(required=True)
    category = Text(required=True)
    lead_member = Text(required=True)
    proposers = Ids(required=True, metadata={"description": "member ids, lead first"})
    lead_unit = Text(required=True)
    co_units = Ids(required=True)
    key = fields.Boolean(required=True)


Deadlines = lambda **kw: fields.Dict(keys=fields.String(), values=fields.String(), **kw)  # noqa: E731


def decided(name, summary, **extra):
    EVENTS.define(name, ProposalFacts, summary, aggregate="proposal",
                  decision=fields.String(required=True,
                                         validate=validate.OneOf(list(domain.DECISIONS))),
                  final_review=fields.Boolean(required=True), **extra)


def simple(name, summary, **extra):
    EVENTS.define(name, ProposalFacts, summary, aggregate="proposal", **extra)


simple("proposal.drafted", "提案草稿已创建")
simple("proposal.draft_updated", "草稿已修改")
simple("proposal.cosign_requested", "已邀请联名委员确认", invited=Ids(required=True),
       due=Day(required=True))
simple("proposal.cosign_confirmed", "联名委员已确认", member=fields.String(required=True))
simple("proposal.cosign_declined", "联名委员已拒绝", member=fields.String(required=True))
simple("proposal.cosign_closed", "联名确认期结束，未确认者不再联名", dropped=Ids(required=True))
simple("proposal.withdrawn", "提案人撤回提案", reason=Text(required=True))
simple("proposal.submitted", "提案已提交", resubmitted=fields.Boolean())
simple("proposal.resubmitted", "退回修改后再次提交")
simple("proposal.review_started", "审查开始（初审分类）",
       stage=fields.String(required=True, validate=validate.OneOf(("classified",))))
simple("proposal.registration_proposed", "已提出拟办意见（复审）",
       decision=fields.String(required=True, validate=validate.OneOf(list(domain.DECISIONS))),
       disputed=fields.Boolean(required=True))
decided("proposal.registered", "立案", number=fields.Integer(allow_none=True, required=True))
decided("proposal.merged", "并案", merged_into=fields.String(required=True))
decided("proposal.converted_to_suggestion", "转意见建议")
decided("proposal.converted_to_opinion", "转社情民意")
decided("proposal.rejected", "不予立案", ground=fields.String(required=True))
decided("proposal.returned", "退回提案人修改", reason=fields.String(required=True))
decided("proposal.forwarded", "超出本级职权，转上级政协办理", to=fields.String(required=True),
        reason=fields.String(required=True))
for name, summary in (("proposal.assigned", "交办承办单位"),
                      ("proposal.reassigned", "重新交办")):
    EVENTS.define(name, ProposalFacts, summary, aggregate="proposal",
                  deadlines=Deadlines(required=True),
                  routing=fields.Raw(allow_none=True, required=True,
                                     metadata={"description": "the routing suggestion used"}))
simple("proposal.unit_objected", "承办单位提出异议（退回）", unit=fields.String(required=True))
simple("proposal.handling_started", "承办单位开始办理")
simple("proposal.proposer_contacted", "承办单位已联系提案人", method=fields.String(required=True))
simple("proposal.co_opinion_given", "协办单位已提交协办意见", unit=fields.String(required=True))
simple("proposal.extension_requested", "承办单位申请延期",
       working_days=fields.Integer(required=True))
simple("proposal.extension_approved", "延期已批准", answer_due=Day(required=True))
simple("proposal.extension_refused", "延期未批准", answer_due=Day(required=True))
simple("proposal.answered", "承办单位已答复（待审核）", answer_category=AnswerCategory(required=True),
       round=fields.Integer(required=True))
simple("proposal.answer_released", "答复已审核发布，请提案人评价",
       answer_category=AnswerCategory(required=True), round=fields.Integer(required=True),
       evaluators=Ids(required=True), evaluation_due=Day(required=True))
simple("proposal.answer_sent_back", "答复退回承办单位", reason=fields.String(required=True))
simple("proposal.evaluated", "提案人已评价", evaluator=fields.String(required=True),
       rating=fields.String(required=True, validate=validate.OneOf(list(domain.RATINGS))),
       round=fields.Integer(required=True), complete=fields.Boolean(required=True),
       outcome=fields.String(validate=validate.OneOf(list(domain.RATINGS))))
simple("proposal.rehandling", "不满意，二次办理", round=fields.Integer(required=True),
       answer_due=Day(required=True))
simple("proposal.closed", "提案办结", evaluation=fields.String(required=True))
simple("proposal.key_selected", "确定为重点提案", supervisors=Ids(required=True))
simple("proposal.supervised", "领导督办", leader=fields.String(required=True))
simple("proposal.excellent_selected", "评为优秀提案")
simple("proposal.reminder_due", "办理期限催办",
       deadline=fields.String(required=True), due=Day(required=True),
       working_days_left=fields.Integer(required=True), after_due=fields.Boolean(required=True),
       supervisors=Ids(required=True), evaluators=Ids(required=True))
simple("proposal.overdue", "已超期", deadlines=Deadlines(required=True))
simple("proposal.imported", "历史提案已导入（计入履职档案）", actions=fields.Integer(required=True),
       submitted=fields.Boolean(required=True), registered=fields.Boolean(required=True),
       excellent=fields.Boolean(required=True))
simple("proposal.received", "下级政协转来的联动提案进入本级审查",
       source_org=fields.String(required=True), source_proposal_id=fields.String(required=True))
simple("proposal.upstream_progressed", "上级政协办理转去的提案有了进展",
       upstream_state=fields.String(required=True, metadata={"description": (
           "the parent's state id (a city's as `state` here; the provincial committee's: "
           "received, registered, assigned, answered, closed, not_registered)")}),
       answer_category=AnswerCategory(allow_none=True))


class Referred(ProposalFacts):
    """A proposal beyond the county's remit, with its content and the
    proposers' names (they are members of another committee)."""
    situation = Text(required=True)
    analysis = Text(required=True)
    suggestions = Text(required=True)
    attachments = fields.List(fields.Raw(), allow_none=True, required=True)
    proposer = Text(required=True)
    cosigners = Ids(required=True)
    reason = Text(required=True)


class Answer(Payload):
    category = AnswerCategory(required=True)
    category_label = fields.String(required=True)
    text = fields.String(required=True)
    on = Day(required=True)
    round = fields.Integer(required=True)


class ProvinceProgress(Payload):
    """The provincial committee's progress on a proposal the city forwarded on."""
    state = fields.String(required=True)
    state_label = fields.String(required=True)
    text = fields.String(allow_none=True, required=True)
    on = fields.String(allow_none=True, required=True)


class Feedback(Payload):
    """What the county learns of its forwarded proposal: released answers only."""
    proposal_id = fields.String(required=True, metadata={"description": "the county's own id"})
    upstream_id = fields.String(required=True)
    state = State(required=True)
    state_label = fields.String(required=True)
    number = fields.Integer(allow_none=True, required=True)
    key = fields.Boolean(required=True)
    lead_unit = Text(required=True, metadata={"description": "the unit's name"})
    answer = fields.Nested(Answer, allow_none=True, required=True)
    evaluation = Text(required=True)
    decision = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                           allow_none=True, required=True)
    on = Day(allow_none=True, required=True)
    province = fields.Nested(ProvinceProgress, allow_none=True, load_default=None, metadata={
        "description": "the provincial committee's progress, once the city forwarded it on"})


EVENTS.define("proposal.referred", Referred, "联动提案：县级提案超出本级职权，报市政协",
              aggregate="proposal", via=UP)
EVENTS.define("proposal.feedback", Feedback, "联动提案的办理进展反馈给县级政协",
              aggregate="proposal", via=DOWN)


class UnitPublic(Payload):
    """A handling unit without its contact people."""
    unit_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    topics = Ids(required=True)
    active = fields.Boolean(required=True)


EVENTS.define("unit.created", UnitPublic, "承办单位已建立", aggregate="unit")
EVENTS.define("unit.updated", UnitPublic, "承办单位信息变更", aggregate="unit")
