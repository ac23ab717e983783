"""The event envelope every event carries, local or linked (DESIGN.md, Events)."""
import uuid
from datetime import datetime, timezone

from marshmallow import RAISE, Schema, fields, validate


def utcnow_iso():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


class EnvelopeSchema(Schema):
    class Meta:
        unknown = RAISE

    event_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z_]+(\.[a-z_]+)+$"))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=timezone.utc)
    origin = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    aggregate_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    seq = fields.Integer(required=True, validate=validate.Range(min=1))
    trace_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    actor = fields.String(required=True, allow_none=True)
    payload = fields.Dict(required=True)


_schema = EnvelopeSchema()


def make_event(type, *, origin, aggregate_id, seq, payload, actor=None,
               trace_id=None, version=1):
    """A new envelope as a plain JSON-ready dict."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": type,
        "version": version,
        "occurred_at": utcnow_iso(),
        "origin": origin,
        "aggregate_id": aggregate_id,
        "seq": seq,
        "trace_id": trace_id or uuid.uuid4().hex,
        "actor": actor,
        "payload": payload,
    }


def validation_errors(body):
    """Field errors of an incoming envelope (empty dict when it is valid)."""
    if not isinstance(body, dict):
        return {"_schema": ["envelope must be a JSON object"]}
    return _schema.validate(body)
