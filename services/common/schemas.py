"""marshmallow building blocks with Chinese messages for staff-facing errors."""
from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate

from .problems import Invalid

REQUIRED = "必填字段"
messages = {
    "required": REQUIRED,
    "null": "不能为空",
    "invalid": "格式不正确",
    "validator_failed": "取值不合法",
}


def _msgs(extra=None):
    out = dict(messages)
    out.update(extra or {})
    return out


def Str(**kw):
    kw.setdefault("error_messages", _msgs({"invalid": "必须是文本"}))
    return fields.String(**kw)


def Int(**kw):
    kw.setdefault("error_messages", _msgs({"invalid": "必须是整数"}))
    return fields.Integer(strict=True, **kw)


def Bool(**kw):
    kw.setdefault("error_messages", _msgs({"invalid": "必须是布尔值"}))
    return fields.Boolean(**kw)


def Date(**kw):
    kw.setdefault("error_messages", _msgs({"invalid": "日期格式应为 YYYY-MM-DD"}))
    return fields.Date(**kw)


def DateTime(**kw):
    kw.setdefault("error_messages", _msgs({"invalid": "时间格式应为 YYYY-MM-DDTHH:MM"}))
    return fields.NaiveDateTime(**kw)


def Nested(schema, **kw):
    kw.setdefault("error_messages", _msgs({"type": "必须是对象"}))
    return fields.Nested(schema, **kw)


def StrList(**kw):
    kw.setdefault("error_messages", _msgs({"invalid": "必须是列表"}))
    return fields.List(Str(), **kw)


def OneOf(choices, labels=None):
    shown = "、".join(labels or choices)
    return validate.OneOf(choices, error=f"取值应为：{shown}")


def Length(min=None, max=None):
    if min and max:
        msg = f"长度应在 {min} 到 {max} 个字符之间"
    elif max:
        msg = f"长度不能超过 {max} 个字符"
    else:
        msg = f"长度不能少于 {min} 个字符"
    return validate.Length(min=min, max=max, error=msg)


class BaseSchema(Schema):
    """Unknown fields are refused, with a Chinese message."""
    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "未知字段", "type": "请求体必须是 JSON 对象"}

    def load_or_raise(self, data, **kw):
        try:
            return self.load(data, **kw)
        except ValidationError as exc:
            raise Invalid(exc.messages) from None


class Seq(BaseSchema):
    """An action's body: ``seq`` is the version the caller saw (optimistic concurrency)."""
    seq = Int(load_default=None)


def action_schema(name, **attrs):
    return type(name, (Seq,), attrs)()


class Contact(BaseSchema):
    """A contact person of a unit or a station (personal: never in events)."""
    name = Str(required=True, validate=Length(1, 50))
    phone = Str(load_default=None, validate=Length(max=30))
    email = fields.Email(load_default=None, error_messages=_msgs({"invalid": "邮箱格式不正确"}))


def Contacts(**kw):
    kw.setdefault("error_messages", _msgs({"invalid": "必须是列表"}))
    return fields.List(Nested(Contact), **kw)


class View(Schema):
    """An answer's schema for the OpenAPI document: the fields a client can
    rely on; an answer may carry more (``additionalProperties``)."""

    class Meta:
        unknown = INCLUDE
