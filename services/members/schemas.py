"""Members API input schemas (field messages in Chinese)."""
from marshmallow import ValidationError, fields, validate, validates

from services.common.schemas import (BaseSchema, Bool, Date, DateTime, Int, Length, Nested,
                                     OneOf, Str, StrList, View)

from . import domain, meetings


def _phone(value):
    if not domain.mobile_ok(value):
        raise ValidationError("手机号应为 11 位中国大陆手机号")


def _id_number(value):
    problem = domain.id_number_problem(value)
    if problem:
        raise ValidationError(problem)


def _coded(table):
    """``OneOf`` a code table, its message naming both: 中共（cpc）、民革（rcckmt）…"""
    return OneOf(list(table), [f"{label}（{code}）" for code, label in table.items()])


class MemberIn(BaseSchema):
    name = Str(required=True, validate=Length(1, 30))
    gender = Str(required=True, validate=_coded(domain.GENDERS))
    ethnicity = Str(required=True, validate=Length(1, 20))
    birth_date = Date(load_default=None)
    party = Str(required=True, validate=_coded(domain.PARTIES))
    sector = Str(required=True)
    committees = StrList(required=True)
    role = Str(required=True, validate=_coded(domain.ROLES))
    term = Str(required=True)
    employer = Str(load_default="", validate=Length(max=100))
    post = Str(load_default="", validate=Length(max=60))
    phone = Str(required=True, validate=_phone)
    id_number = Str(required=True, validate=_id_number)
    appointment = Str(load_default="election", validate=_coded(domain.APPOINTMENTS))
    appointed_on = Date(load_default=None)
    email = Str(load_default=None, allow_none=True, validate=validate.Email(
        error="电子邮箱格式不正确"))
    wechat_openid = Str(load_default=None, allow_none=True, validate=Length(max=64))

    @validates("committees")
    def _committees(self, value, **_):
        if not value:
            raise ValidationError("每位委员至少属于一个专委会（全员入委）")


class MemberPatch(MemberIn):
    """Any subset of the fields; ``seq`` is the version the editor saw."""
    seq = Int(load_default=None)


class EndIn(BaseSchema):
    status = Str(required=True, validate=OneOf(["removed", "resigned", "term_ended"]))
    reason = Str(required=True, validate=Length(2, 500))
    ended_on = Date(required=True)
    seq = Int(load_default=None)


member_in = MemberIn()
member_patch = MemberPatch(partial=True)
end_in = EndIn()


class Invite(BaseSchema):
    all = Bool(load_default=False)
    roles = StrList(load_default=list)
    committees = StrList(load_default=list)
    sectors = StrList(load_default=list)
    members = StrList(load_default=list)


class MeetingIn(BaseSchema):
    kind = Str(required=True, validate=OneOf(list(meetings.KINDS), list(meetings.KINDS.values())))
    title = Str(required=True, validate=Length(1, 100))
    place = Str(required=True, validate=Length(1, 100))
    starts_at = DateTime(required=True)
    ends_on = Date(required=True)
    term = Str(load_default=None)
    invite = Nested(Invite, required=True)


class LeaveIn(BaseSchema):
    reason = Str(required=True, validate=Length(1, 500))


class LeaveDecision(BaseSchema):
    approve = Bool(required=True)
    note = Str(load_default=None, validate=Length(max=500))


class CodeIn(BaseSchema):
    day = Date(load_default=None)
    valid_minutes = Int(load_default=None, validate=validate.Range(
        min=1, max=720, error="有效时间应为 1 到 720 分钟"))


class CheckinIn(BaseSchema):
    member_id = Str(load_default=None)
    day = Date(load_default=None)
    code = Str(load_default=None, validate=Length(max=12))


meeting_in = MeetingIn()
leave_in = LeaveIn()
leave_decision = LeaveDecision()
code_in = CodeIn()
checkin_in = CheckinIn()


class ReopenIn(BaseSchema):
    reason = Str(load_default=None, validate=Length(max=500))


reopen_in = ReopenIn()


# --- answers (for the OpenAPI document; extra fields are allowed) ------------
class MemberView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    name = fields.String(required=True)
    gender = fields.String(validate=validate.OneOf(list(domain.GENDERS)))
    party = fields.String(validate=validate.OneOf(list(domain.PARTIES)))
    sector = fields.String()
    committees = fields.List(fields.String())
    role = fields.String(validate=validate.OneOf(list(domain.ROLES)))
    term = fields.String()
    status = fields.String(validate=validate.OneOf(list(domain.STATUSES)))
    phone = fields.String(allow_none=True, metadata={"description": "masked unless the office or the member"})


class MeetingView(View):
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    kind = fields.String(validate=validate.OneOf(list(meetings.KINDS)))
    kind_label = fields.String()
    title = fields.String()
    place = fields.String()
    starts_at = fields.String()
    ends_on = fields.String()
    state = fields.String()
    invited = fields.List(fields.String())
