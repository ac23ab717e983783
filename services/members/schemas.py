"""Members API input schemas (field messages in Chinese)."""
from marshmallow import ValidationError, validates

from services.common.schemas import (BaseSchema, Date, Length, OneOf, Str, StrList,
                                     Int)

from . import domain


def _phone(value):
    if not domain.mobile_ok(value):
        raise ValidationError("手机号应为 11 位中国大陆手机号")


def _id_number(value):
    problem = domain.id_number_problem(value)
    if problem:
        raise ValidationError(problem)


class MemberIn(BaseSchema):
    name = Str(required=True, validate=Length(1, 30))
    gender = Str(required=True, validate=OneOf(list(domain.GENDERS), list(domain.GENDERS)))
    ethnicity = Str(required=True, validate=Length(1, 20))
    birth_date = Date(load_default=None)
    party = Str(required=True, validate=OneOf(list(domain.PARTIES)))
    sector = Str(required=True)
    committees = StrList(required=True)
    role = Str(required=True, validate=OneOf(list(domain.ROLES)))
    term = Str(required=True)
    employer = Str(load_default="", validate=Length(max=100))
    post = Str(load_default="", validate=Length(max=60))
    phone = Str(required=True, validate=_phone)
    id_number = Str(required=True, validate=_id_number)
    appointment = Str(load_default="election", validate=OneOf(list(domain.APPOINTMENTS)))
    appointed_on = Date(load_default=None)

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
