"""Notify API input: a person's preferences."""
from marshmallow import ValidationError, fields, validates

from services.common.schemas import BaseSchema, Bool, Nested, Str, messages

from .policy import CHANNELS


def _hhmm(value):
    parts = value.split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 23 \
            or int(parts[1]) > 59:
        raise ValidationError("时间格式应为 HH:MM")


class Quiet(BaseSchema):
    start = Str(required=True, validate=_hhmm)
    end = Str(required=True, validate=_hhmm)


class PreferencesIn(BaseSchema):
    channels = fields.Dict(keys=Str(), values=fields.List(Str()), load_default=None,
                           error_messages=dict(messages, invalid="必须是对象"))
    quiet = Nested(Quiet, load_default=None, allow_none=True)
    digest = Bool(load_default=None)

    @validates("channels")
    def _channels(self, value, **_):
        bad = sorted({c for chosen in (value or {}).values() for c in chosen
                      if c not in CHANNELS})
        if bad:
            raise ValidationError(f"未知的渠道：{'、'.join(bad)}；可选：{'、'.join(CHANNELS)}")


preferences_in = PreferencesIn()
