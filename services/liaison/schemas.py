"""Liaison API input: one schema per request body, Chinese messages."""
from marshmallow import fields, validate

from services.common.schemas import (BaseSchema, Bool, Contacts, Date, Int, Length, Nested,
                                     OneOf, Str, StrList, View, action_schema)

from . import citizen, consult, opinions, stations, tasks

ID = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,39}$",
                     error="编码只能包含字母、数字、- 和 _，长度 2–40")


class StationIn(BaseSchema):
    id = Str(load_default=None, validate=ID)
    name = Str(required=True, validate=Length(1, 100))
    kind = Str(required=True, validate=OneOf(list(stations.KINDS),
                                             list(stations.KINDS.values())))
    place_code = Str(required=True)
    address = Str(load_default=None, validate=Length(max=200))
    members = StrList(load_default=list)
    contacts = Contacts(load_default=list)


class StationPatch(BaseSchema):
    name = Str(validate=Length(1, 100))
    address = Str(allow_none=True, validate=Length(max=200))
    contacts = Contacts()
    active = Bool()
    seq = Int(load_default=None)


class Assignment(BaseSchema):
    member_id = Str(required=True, validate=Length(1, 64))


class Reception(BaseSchema):
    date = Date(required=True)
    members = StrList(load_default=list)
    topic = Str(load_default=None, validate=Length(max=200))


class Activity(BaseSchema):
    date = Date(required=True)
    title = Str(required=True, validate=Length(1, 100))
    members = StrList(required=True, validate=validate.Length(min=1, error="至少一名委员"))


class RequestIn(BaseSchema):
    station_id = Str(required=True)
    category = Str(required=True, validate=OneOf(list(citizen.CATEGORIES),
                                                 list(citizen.CATEGORIES.values())))
    topic = Str(load_default=None)
    title = Str(required=True, validate=Length(1, 50))
    description = Str(required=True, validate=Length(1, 2000))
    place_code = Str(load_default=None)
    contact = Str(load_default=None, validate=Length(max=100))
    channel = Str(load_default=None, validate=OneOf(["station", "phone", "online"],
                                                    ["站点登记", "电话", "网上"]))


REQUEST_ACTIONS = {
    "dispatch": action_schema("Dispatch", member_id=Str(required=True)),
    "decline": action_schema("Decline", reason=Str(required=True, validate=Length(1, 500))),
    "accept": action_schema("Accept"),
    "close": action_schema("CloseRequest", result=Str(required=True, validate=Length(1, 2000)),
                           resolved=Bool(required=True)),
    "rate": action_schema("Rate", score=Int(required=True, validate=validate.Range(
        1, 5, error="评分应为 1 到 5")), comment=Str(load_default=None, validate=Length(max=500))),
    "escalate": action_schema("Escalate", to=Str(required=True, validate=OneOf(
        ["opinion", "proposal"], ["社情民意", "提案"])),
        title=Str(load_default=None, validate=Length(1, 50)),
        note=Str(load_default=None, validate=Length(max=1500))),
}


class Other(BaseSchema):
    name = Str(required=True, validate=Length(1, 50))
    role = Str(load_default=None, validate=Length(max=100))


class ConsultationIn(BaseSchema):
    title = Str(required=True, validate=Length(1, 100))
    source = Str(required=True, validate=OneOf(list(consult.SOURCES),
                                               list(consult.SOURCES.values())))
    background = Str(load_default=None, validate=Length(max=3000))
    station_id = Str(load_default=None)
    members = StrList(load_default=list)
    others = Nested(Other, many=True, load_default=list)


CONSULTATION_ACTIONS = {
    "advance": action_schema(
        "Advance", members=StrList(load_default=list), others=Nested(Other, many=True,
                                                                     load_default=list),
        outcomes=StrList(load_default=list), feedback=Str(load_default=None,
                                                          validate=Length(max=3000))),
    "add_followup": action_schema(
        "Followup", item=Str(required=True, validate=Length(1, 500)),
        owner=Str(required=True, validate=Length(1, 100)), due=Date(required=True)),
    "complete_followup": action_schema(
        "FollowupDone", followup_id=Str(required=True),
        note=Str(load_default=None, validate=Length(max=1000))),
}

LEVEL = OneOf(list(opinions.LEVELS), list(opinions.LEVELS.values()))


class OpinionIn(BaseSchema):
    title = Str(required=True, validate=Length(1, 100))
    content = Str(required=True, validate=Length(1, opinions.MAX_CHARS))
    category = Str(load_default=None, validate=Length(max=50))
    author_member = Str(load_default=None)
    station_id = Str(load_default=None)


OPINION_ACTIONS = {
    "accept": action_schema("AcceptOpinion"),
    "reject": action_schema("RejectOpinion", reason=Str(required=True,
                                                        validate=Length(1, 500))),
    "edit": action_schema("EditOpinion", title=Str(validate=Length(1, 100)),
                          content=Str(validate=Length(1, opinions.MAX_CHARS))),
    "issue": action_schema("IssueOpinion", issue_no=Int(load_default=None, validate=(
        validate.Range(min=1, error="期号应为正整数")))),
    "report": action_schema("ReportOpinion", level=Str(required=True, validate=LEVEL)),
    "adopt": action_schema("AdoptOpinion", level=Str(required=True, validate=LEVEL),
                           note=Str(load_default=None, validate=Length(max=500))),
    "instruct": action_schema("InstructOpinion", level=Str(required=True, validate=LEVEL),
                              leader=Str(required=True, validate=Length(1, 50)),
                              text=Str(load_default=None, validate=Length(max=1000))),
}

station_in, station_patch = StationIn(), StationPatch()
assignment_in, reception_in, activity_in = Assignment(), Reception(), Activity()
request_in, consultation_in, opinion_in = RequestIn(), ConsultationIn(), OpinionIn()


class TaskIn(BaseSchema):
    kind = Str(required=True, validate=OneOf(list(tasks.KINDS), list(tasks.KINDS.values())))
    title = Str(required=True, validate=Length(1, 100))
    content = Str(required=True, validate=Length(1, 5000))
    due_on = Date(required=True)
    targets = StrList(load_default=list)
    parent_task = Str(load_default=None, metadata={
        "description": "a task this platform received (e.g. the province's) that this one "
                       "passes on to the counties"})


TASK_ACTIONS = {
    "accept": action_schema("AcceptTask"),
    "report": action_schema("ReportTask", summary=Str(required=True, validate=Length(1, 3000)),
                            completed_on=Date(load_default=None),
                            refs=StrList(load_default=list)),
}
task_in = TaskIn()


class LiaisonImportIn(BaseSchema):
    """Past work to import: each record is checked on its own (history_import.py)."""
    records = fields.List(fields.Dict(), required=True, error_messages={
        "required": "必须是记录列表", "invalid": "必须是记录列表"})


liaison_import_in = LiaisonImportIn()


# --- answers (for the OpenAPI document; extra fields are allowed) ------------
class StationView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(validate=validate.OneOf(list(stations.KINDS)))
    kind_label = fields.String()
    place_code = fields.String()
    township = fields.String(allow_none=True)
    members = fields.List(fields.String())
    meets_minimum = fields.Boolean()
    minimum = fields.Integer()


class RequestView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    station_id = fields.String()
    state = fields.String(validate=validate.OneOf(list(citizen.STATE_LABELS)))
    state_label = fields.String()
    category = fields.String(validate=validate.OneOf(list(citizen.CATEGORIES)))
    title = fields.String()
    member_id = fields.String(allow_none=True)
    allowed_actions = fields.List(fields.String())


class ConsultationView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    title = fields.String()
    source = fields.String(validate=validate.OneOf(list(consult.SOURCES)))
    state = fields.String()
    state_label = fields.String()
    members = fields.List(fields.String())
    allowed_actions = fields.List(fields.String())


class OpinionView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    title = fields.String()
    state = fields.String()
    state_label = fields.String()
    author_member = fields.String(allow_none=True)
    allowed_actions = fields.List(fields.String())


class TaskView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    kind = fields.String(validate=validate.OneOf(list(tasks.KINDS)))
    title = fields.String()
    due_on = fields.String()
    state = fields.String()
    overdue = fields.Boolean()
    allowed_actions = fields.List(fields.String())
