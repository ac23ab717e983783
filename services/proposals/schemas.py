"""Proposals API input: one schema per request body, Chinese messages."""
from marshmallow import fields, validate

from services.common.schemas import (BaseSchema, Bool, Contacts, Date, Int, Length, Nested,
                                     OneOf, Seq, Str, StrList, View, action_schema,
                                     messages)

from . import domain


class Attachment(BaseSchema):
    name = Str(required=True, validate=Length(1, 200))
    size = Int(load_default=None, validate=validate.Range(min=0, error="不能为负数"))
    content_type = Str(load_default=None, validate=Length(max=100))
    url = Str(load_default=None, validate=Length(max=500))


class Collective(BaseSchema):
    kind = Str(required=True, validate=OneOf(list(domain.COLLECTIVE_KINDS),
                                             list(domain.COLLECTIVE_KINDS.values())))
    name = Str(required=True, validate=Length(1, 100))


class Content(BaseSchema):
    title = Str(validate=Length(1, 50))
    situation = Str(validate=Length(max=5000))
    analysis = Str(validate=Length(max=5000))
    suggestions = Str(validate=Length(max=5000))
    category = Str(validate=OneOf(list(domain.CATEGORIES), list(domain.CATEGORIES.values())))
    attachments = fields.List(Nested(Attachment), validate=validate.Length(
        max=20, error="附件不能超过 20 个"), error_messages=dict(messages, invalid="必须是列表"))


class ProposalIn(Content):
    kind = Str(required=True, validate=OneOf(["member", "collective"], ["委员提案", "集体提案"]))
    type = Str(load_default="interim", validate=OneOf(list(domain.TYPES),
                                                      list(domain.TYPES.values())))
    title = Str(required=True, validate=Length(1, 50))
    lead_member = Str(load_default=None)
    cosigners = StrList(load_default=list, validate=validate.Length(
        max=30, error="联名委员不能超过 30 人"))
    collective = Nested(Collective, load_default=None, allow_none=True)


class DraftPatch(Content, Seq):
    pass


_decision = dict(
    decision=Str(required=True, validate=OneOf(list(domain.DECISIONS))),
    ground=Str(load_default=None), reason=Str(load_default=None, validate=Length(max=1000)),
    merged_into=Str(load_default=None), note=Str(load_default=None, validate=Length(max=1000)))
_units = dict(lead_unit=Str(required=True), co_units=StrList(load_default=list),
              difficult=Bool(load_default=False))

ACTIONS = {
    "update_draft": DraftPatch(),
    "submit": action_schema("Submit"),
    "confirm_cosign": action_schema("ConfirmCosign"),
    "decline_cosign": action_schema("DeclineCosign"),
    "close_cosigning": action_schema("CloseCosigning"),
    "withdraw": action_schema("Withdraw", reason=Str(load_default=None,
                                                     validate=Length(0, 1000))),
    "classify": action_schema("Classify", category=Str(load_default=None, validate=OneOf(
        list(domain.CATEGORIES), list(domain.CATEGORIES.values()))),
        note=Str(load_default=None, validate=Length(max=1000))),
    "propose": action_schema("Propose", disputed=Bool(load_default=False), **_decision),
    "decide": action_schema("Decide", **dict(_decision, decision=Str(
        load_default=None, validate=OneOf(list(domain.DECISIONS))))),
    "resubmit": action_schema("Resubmit"),
    "assign": action_schema("Assign", routing=Str(load_default=None, validate=OneOf(
        ["accepted", "overridden"], ["采纳建议", "人工指定"])), **_units),
    "reassign": action_schema("Reassign", routing=Str(load_default=None, validate=OneOf(
        ["accepted", "overridden"], ["采纳建议", "人工指定"])), **_units),
    "object": action_schema("Object", reason=Str(required=True, validate=Length(1, 1000))),
    "start": action_schema("Start"),
    "contact": action_schema("ContactProposer", method=Str(required=True, validate=OneOf(
        ["phone", "visit", "meeting", "other"], ["电话", "走访", "座谈", "其他"])),
        note=Str(load_default=None, validate=Length(max=1000))),
    "co_opinion": action_schema("CoOpinion", text=Str(required=True, validate=Length(1, 5000))),
    "request_extension": action_schema("RequestExtension",
                                 reason=Str(required=True, validate=Length(1, 1000)),
                                 working_days=Int(required=True)),
    "approve_extension": action_schema("ApproveExtension", approve=Bool(load_default=True)),
    "answer": action_schema("Answer", category=Str(required=True, validate=OneOf(
        list(domain.ANSWER_CATEGORIES))), text=Str(required=True, validate=Length(1, 20000))),
    "release": action_schema("Release"),
    "send_back": action_schema("SendBack", reason=Str(required=True, validate=Length(1, 1000))),
    "evaluate": action_schema("Evaluate", rating=Str(required=True, validate=OneOf(
        list(domain.RATINGS), list(domain.RATINGS.values()))),
        comment=Str(load_default=None, validate=Length(max=2000)),
        evaluator=Str(load_default=None)),
    "rehandle": action_schema("Rehandle"),
    "close": action_schema("Close"),
    "mark_key": action_schema("MarkKey", supervisors=StrList(required=True)),
    "supervise": action_schema("Supervise", leader=Str(required=True),
                         note=Str(load_default=None, validate=Length(max=2000))),
    "mark_excellent": action_schema("MarkExcellent"),
}


UNIT_KINDS = {"government": "政府部门", "party": "党委部门", "court": "法院",
              "procuratorate": "检察院", "people_org": "人民团体",
              "public_institution": "事业单位", "enterprise": "企业", "other": "其他"}


class UnitIn(BaseSchema):
    id = Str(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,31}$",
                                                     error="编码只能用小写字母、数字、-、_，最长 32 位"))
    name = Str(required=True, validate=Length(1, 100))
    kind = Str(required=True, validate=OneOf(list(UNIT_KINDS), list(UNIT_KINDS.values())))
    topics = StrList(load_default=list)
    contacts = Contacts(load_default=list)
    active = Bool(load_default=True)


class UnitPatch(BaseSchema):
    name = Str(validate=Length(1, 100))
    kind = Str(validate=OneOf(list(UNIT_KINDS), list(UNIT_KINDS.values())))
    topics = StrList()
    contacts = Contacts()
    active = Bool()
    seq = Int(load_default=None)


class ImportAction(BaseSchema):
    action = Str(required=True, validate=OneOf(list(domain.ACTIONS)))
    on = Date(required=True)
    as_ = StrList(required=True, data_key="as")
    data = fields.Dict(load_default=dict)


class ImportRecord(BaseSchema):
    ref = Str(required=True, validate=Length(1, 64))
    proposal = fields.Dict(required=True)
    created_on = Date(required=True)
    actions = fields.List(Nested(ImportAction), load_default=list)


class ImportIn(BaseSchema):
    proposals = fields.List(Nested(ImportRecord), required=True, validate=validate.Length(
        1, 1000, error="每次导入 1 到 1000 条"))


proposal_in = ProposalIn()
unit_in = UnitIn()
unit_patch = UnitPatch()
import_in = ImportIn()


# --- answers (for the OpenAPI document; extra fields are allowed) ------------
class ProposalView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    number = fields.Integer(allow_none=True)
    title = fields.String()
    state = fields.String(required=True, validate=validate.OneOf(domain.STATES))
    state_label = fields.String()
    kind = fields.String(validate=validate.OneOf(("member", "collective", "linked")))
    type = fields.String(validate=validate.OneOf(list(domain.TYPES)))
    year = fields.Integer()
    category = fields.String(allow_none=True)
    lead_member = fields.String(allow_none=True)
    lead_unit = fields.String(allow_none=True)
    co_units = fields.List(fields.String())
    key = fields.Integer()
    allowed_actions = fields.List(fields.String(), metadata={
        "description": "what the caller can do now (each is POST …/actions/<action>)"})


class UnitView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String()
    topics = fields.List(fields.String())
    active = fields.Boolean()
