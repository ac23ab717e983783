"""The event registry: every event type, declared once with its payload schema.

Each service declares what it emits in its own ``events.py``::

    EVENTS = Registry("proposals")
    EVENTS.define("proposal.registered", ProposalFacts, "立案",
                  aggregate="proposal", number=fields.Integer())

A definition names the type, the payload schema (a marshmallow schema, strict:
an unknown field is an error), one line saying what happened, the aggregate
and, for events sent to another platform, the link exchange (``via``). Extra
keyword fields extend the base schema for this type only.

``Change.event`` checks every event against the registry before it is stored
in the outbox (``check``): an unknown type, a payload that does not match its
schema or a linked event sent over the wrong exchange is refused with
``EventContractError`` and nothing is written. The AsyncAPI document and
``docs/events.md`` are generated from the same definitions
(``python -m services.catalogue``), so they cannot drift from the code.
"""
from dataclasses import dataclass, field

from marshmallow import RAISE, Schema

from .names import LINK_EXCHANGES


class EventContractError(ValueError):
    """An event the registry does not allow: a bug in the emitting code."""


@dataclass(frozen=True)
class EventType:
    name: str
    service: str
    schema: type
    summary: str
    aggregate: str
    via: str | None = None           # zhzx.up / zhzx.down for linked events
    consumers: tuple = field(default=())

    @property
    def linked(self):
        return self.via is not None

    @property
    def exchange(self):
        return self.via or f"{self.service}.events"


_ALL = {}


def _schema_for(name, base, extra):
    if not extra:
        schema = base
    else:
        cls_name = "".join(part.title() for part in name.replace("_", ".").split(".")) + "Payload"
        schema = type(cls_name, (base,), dict(extra))
    if getattr(schema.Meta, "unknown", None) != RAISE:
        raise TypeError(f"{name}: payload schema {schema.__name__} must be strict (unknown = RAISE)")
    return schema


class Registry:
    """The event types one service (or the kernel) emits."""

    def __init__(self, service):
        self.service = service
        self.types = {}

    def define(self, name, schema, summary, *, aggregate, via=None, **extra):
        if name in _ALL:
            raise ValueError(f"event type defined twice: {name}")
        if via is not None and via not in LINK_EXCHANGES:
            raise ValueError(f"{name}: not a link exchange: {via}")
        event_type = EventType(name, self.service, _schema_for(name, schema, extra), summary,
                               aggregate, via)
        self.types[name] = _ALL[name] = event_type
        return name

    def __iter__(self):
        return iter(self.types.values())


class Payload(Schema):
    """Base of every payload schema: strict, so the catalogue is exact."""

    class Meta:
        unknown = RAISE


def lookup(name):
    try:
        return _ALL[name]
    except KeyError:
        raise EventContractError(f"unknown event type: {name} (declare it in the service's "
                                 "events.py)") from None


def check(name, payload, via=None):
    """Refuse an event the registry does not allow (EventContractError)."""
    event_type = lookup(name)
    if event_type.via != via:
        where = event_type.via or "its service's own exchange"
        raise EventContractError(f"{name} is sent on {where}, not on {via or 'the local exchange'}")
    errors = event_type.schema().validate(payload if isinstance(payload, dict) else {})
    if errors or not isinstance(payload, dict):
        raise EventContractError(f"{name}: payload does not match its schema: {errors}")
    return event_type


def all_types():
    """Every event type declared so far (import the registries first)."""
    return dict(_ALL)
