"""The event catalogue, generated from the services' event registries.

    python -m services.catalogue          # rewrite docs/asyncapi.yaml and docs/events.md
    python -m services.catalogue --check  # exit 1 when the committed files differ

AsyncAPI 3.0 with AMQP bindings: a local event's channel is its routing key on
``<service>.events``; a linked event's channel is ``{org}.<type>`` on
``zhzx.up`` or ``zhzx.down``, ``org`` being the receiving platform's code.
Payload schemas are converted from the registries' marshmallow schemas by
apispec's marshmallow plugin (the same converter as the OpenAPI documents), so
a field added in code appears in the document without anyone writing it twice.
"""
import inspect
import re
import sys
from importlib import import_module
from pathlib import Path

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from nameko.events import EventHandler

from services import docgen
from services.common.envelope import EnvelopeSchema
from services.common.names import UP
from services.common.signing import H_KEY, H_SIGNATURE

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
EVENTS_MD = ROOT / "docs" / "events.md"
VERSION = "1.0.0"

# The modules declaring event types, and the nameko services consuming them.
REGISTRIES = ("services.common.rollup", "services.members.events",
              "services.proposals.events", "services.liaison.events",
              "services.provincial.events")
SERVICES = (("services.members.service", "MembersService"),
            ("services.proposals.service", "ProposalsService"),
            ("services.liaison.service", "LiaisonService"),
            ("services.notify.service", "NotifyService"),
            ("services.provincial.service", "ProvincialService"))


def load():
    """The event types of the services' registries (``EVENTS`` in each module)."""
    types = {}
    for module in REGISTRIES:
        types.update(import_module(module).EVENTS.types)
    return types


def _matches(pattern, key):
    """AMQP topic matching: ``*`` one word, ``#`` zero or more."""
    if pattern == "#":
        return True
    return re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\#", ".*"),
                        key) is not None


def consumers(types):
    """``{type: [service, ...]}`` from the services' event handlers; a
    service bound with a wildcard is marked ``*`` (it receives every matching
    event and acts on those its rules name)."""
    bindings = []
    for module, name in SERVICES:
        cls = getattr(import_module(module), name)
        for _, method in inspect.getmembers(cls, inspect.isfunction):
            for entry in getattr(method, "nameko_entrypoints", ()):
                if isinstance(entry, EventHandler):
                    source = entry.source_service
                    exchange = source if source.startswith("zhzx.") else f"{source}.events"
                    bindings.append((exchange, entry.event_type, cls.name))
    out = {}
    for t in types.values():
        who = set()
        for exchange, pattern, service in bindings:
            if exchange == t.exchange and _matches(pattern, t.name):
                who.add(service + ("*" if "*" in pattern or "#" in pattern else ""))
        out[t.name] = sorted(who)
    return out


def channel_id(event_type):
    head, *rest = event_type.split(".")
    return head + "".join(part.title().replace("_", "") for part in "_".join(rest).split("_"))


def message_id(event_type):
    return channel_id(event_type)[0].upper() + channel_id(event_type)[1:]


def _schemas(types):
    spec = APISpec("events", VERSION, "3.1.0", plugins=[MarshmallowPlugin()])
    spec.components.schema("Envelope", schema=EnvelopeSchema)
    names = {}
    for t in types.values():
        name = t.schema.__name__
        if name in names and names[name] is not t.schema:
            raise ValueError(f"two payload schemas named {name}")
        if name not in names:
            spec.components.schema(name, schema=t.schema)
            names[name] = t.schema
    schemas = spec.to_dict()["components"]["schemas"]
    schemas["Envelope"]["properties"]["payload"] = {"type": "object"}
    return schemas


def _amqp_exchange(name):
    return {"name": name, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}


LINK_SIGNATURE = {
    "type": "object",
    "description": (
        "The sending platform's Ed25519 signature (docs/security.md): over the receiving "
        "org code, a newline and the envelope as canonical JSON (sorted keys, no spaces, "
        "UTF-8). A receiver applies the event only if it verifies with a key registered "
        "for `origin`, the origin may send in this direction, and it is not stale."),
    "required": [H_KEY, H_SIGNATURE],
    "properties": {
        H_KEY: {"type": "string", "pattern": "^[0-9a-f]{16}$",
                "description": "first 16 hex digits of the SHA-256 of the raw public key"},
        H_SIGNATURE: {"type": "string", "description": "base64 of the 64-byte signature"},
    },
}


def asyncapi(types, consumed):
    channels, operations, messages = {}, {}, {}
    for name in sorted(types, key=lambda n: (types[n].via or "", n)):
        t = types[name]
        cid, mid = channel_id(name), message_id(name)
        channel = {
            "address": f"{{org}}.{name}" if t.linked else name,
            "title": name,
            "summary": t.summary,
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": _amqp_exchange(t.exchange),
                                  "bindingVersion": "0.3.0"}},
        }
        if t.linked:
            direction = "county → city" if t.via == UP else "city → county"
            channel["description"] = (
                f"Linked event ({direction}), published on the sender's `{t.via}` and "
                f"federated to the receiver's; bind `<your org code>.{name}` there.")
            channel["parameters"] = {"org": {
                "description": "the receiving platform's org code (6 digits, GB/T 2260)",
                "examples": ["140400" if t.via == UP else "140428"]}}
        who = consumed.get(name)
        if who:
            channel.setdefault("description", "")
            channel["description"] = (channel["description"] + " " if channel["description"]
                                      else "") + "Consumed by " + ", ".join(who) + "."
        channels[cid] = channel
        operations[f"send{mid}"] = {
            "action": "send",
            "title": f"{t.service} publishes {name}",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"}],
        }
        messages[mid] = {
            "name": name,
            "title": t.summary,
            "contentType": "application/json",
            "payload": {"allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {"type": "object", "properties": {
                    "type": {"const": name},
                    "payload": {"$ref": f"#/components/schemas/{t.schema.__name__}"}}}]},
        }
        if t.linked:
            messages[mid]["headers"] = {"$ref": "#/components/schemas/LinkSignature"}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "智慧政协 network events",
            "version": VERSION,
            "description": (
                "Events published by each platform's services. Generated from the event "
                "registries (services/*/events.py) by `python -m services.catalogue`; do not "
                "edit. Every message is the envelope of docs/kernel.md with a typed payload. "
                "Local events: topic exchange `<service>.events`, routing key = type. Linked "
                "events: `zhzx.up` / `zhzx.down`, routing key `<receiving org>.<type>`."),
        },
        "defaultContentType": "application/json",
        "servers": {"platform": {"host": "127.0.0.1:5672", "protocol": "amqp",
                                 "description": "the platform's own RabbitMQ broker"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages,
                       "schemas": dict(_schemas(types), LinkSignature=LINK_SIGNATURE)},
    }


def _fields(schema_cls):
    out = []
    for name, f in schema_cls._declared_fields.items():
        out.append(f"`{name}`" + ("" if f.required else "?"))
    return ", ".join(out)


def events_md(types, consumed):
    lines = [
        "# Event catalogue",
        "",
        "Generated from the event registries (`services/*/events.py`) by",
        "`python -m services.catalogue`; do not edit. The machine-readable form is",
        "[asyncapi.yaml](asyncapi.yaml) (AsyncAPI 3.0, with each payload's JSON schema).",
        "",
        "Every event is the envelope of [kernel.md](kernel.md) with a typed payload.",
        "Local events go to the topic exchange `<service>.events` with routing key =",
        "type. Linked events (三级联动, [linkage.md](linkage.md)) go to `zhzx.up` or",
        "`zhzx.down` with routing key `<receiving org>.<type>`, keep their `origin`,",
        "and carry the aggregate's version after the change without adding one.",
        "Payloads never carry phone or ID numbers, birth dates or citizen contacts.",
        "",
        f"{len(types)} event types; `field?` is optional; `notify*`: receives every event",
        "of the exchange and acts on those its rules name (`deploy/config/platform.yaml`).",
    ]
    by_service = {}
    for t in types.values():
        by_service.setdefault("linked" if t.linked else t.service, []).append(t)
    for group in sorted(by_service, key=lambda g: (g == "linked", g)):
        heading = "Linked events" if group == "linked" else f"`{group}.events`"
        lines += ["", f"## {heading}", "",
                  "| type | routing key | aggregate | what happened | payload | consumed by |",
                  "|---|---|---|---|---|---|"]
        for t in sorted(by_service[group], key=lambda t: t.name):
            key = f"`<org>.{t.name}` on `{t.via}`" if t.linked else f"`{t.name}`"
            who = ", ".join(consumed.get(t.name, ())) or "—"
            lines.append(f"| `{t.name}` | {key} | {t.aggregate} | {t.summary} | "
                         f"{_fields(t.schema)} | {who} |")
    return "\n".join(lines) + "\n"


def render():
    types = load()
    consumed = consumers(types)
    doc = yaml.safe_dump(asyncapi(types, consumed), allow_unicode=True, sort_keys=False,
                         width=100)
    return {ASYNCAPI: doc, EVENTS_MD: events_md(types, consumed)}


def main(argv=None):
    return docgen.sync(render(), argv, __doc__.splitlines()[0], "python -m services.catalogue")


if __name__ == "__main__":
    sys.exit(main())
