"""Notification rules: which event reaches whom, with which Chinese text. Pure.

A rule (data, in ``NOTIFY.rules``)::

    {"id": "proposal-assigned", "event": "proposal.assigned", "kind": "assignment",
     "urgent": false, "when": {"key": true},
     "to": [{"unit": "lead_unit"}, {"unit": "co_units"}],
     "title": "新交办提案", "template": "您单位有新交办的提案《{{ title }}》……"}

``to`` names payload fields holding one id or a list of ids, per recipient
kind (member, unit, station, leader); ``when`` keeps the rule to events whose
payload has these values (a list: one of them). Templates are Jinja2, rendered in a sandbox with the
event's payload (and ``event`` for the envelope); a recipient is a string
``<kind>:<id>``, the same as the role of that person in tokens.
"""
import fnmatch
import hashlib
from dataclasses import dataclass, field

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

KINDS = ("member", "unit", "station", "leader", "office", "citizen")
# ``{office: committee}`` names an office inbox itself (the committee office,
# read by admins), not a payload field: offices have no per-event id
OFFICE = "office"
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def date_cn(value):
    """``2026-11-22`` → 2026年11月22日; a date and time adds ``09:30``: how
    notices print dates (templates: ``{{ due | date_cn }}``)."""
    text = str(value or "")
    try:
        year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    except ValueError:
        return text
    out = f"{year}年{month}月{day}日"
    if len(text) >= 16 and text[10] in "T ":
        out += f" {text[11:16]}"
    return out


_ENV.filters["date_cn"] = date_cn


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    id: str
    event: str
    kind: str
    title: str
    template: str
    to: tuple = ()
    when: dict = field(default_factory=dict)
    urgent: bool = False

    @classmethod
    def of(cls, raw):
        try:
            rule = cls(id=str(raw["id"]), event=str(raw["event"]), kind=str(raw["kind"]),
                       title=str(raw["title"]), template=str(raw["template"]),
                       to=tuple(dict(t) for t in raw.get("to") or ()),
                       when=dict(raw.get("when") or {}), urgent=bool(raw.get("urgent")))
        except (KeyError, TypeError) as exc:
            raise RuleError(f"rule {raw!r}: missing {exc}") from None
        for spec in rule.to:
            if len(spec) != 1 or next(iter(spec)) not in KINDS:
                raise RuleError(f"rule {rule.id}: recipient {spec!r} is not one of {KINDS}")
        try:
            _ENV.from_string(rule.template)
            _ENV.from_string(rule.title)
        except TemplateError as exc:
            raise RuleError(f"rule {rule.id}: template: {exc}") from None
        return rule

    def matches(self, event):
        if not fnmatch.fnmatchcase(event.get("type", ""), self.event):
            return False
        payload = event.get("payload") or {}
        return all(payload.get(k) == v or (isinstance(v, list) and payload.get(k) in v)
                   for k, v in self.when.items())

    def recipients(self, event):
        payload = event.get("payload") or {}
        out = []
        for spec in self.to:
            kind, source = next(iter(spec.items()))
            if kind == OFFICE:
                out.append(f"{OFFICE}:{source}")
                continue
            value = payload.get(source)
            for rid in (value if isinstance(value, list) else [value]):
                if rid:
                    out.append(f"{kind}:{rid}")
        return list(dict.fromkeys(out))

    def render(self, event):
        """(title, body) for ``event``; a template error names the rule."""
        context = dict(event.get("payload") or {})
        context["event"] = {k: event.get(k) for k in ("type", "origin", "occurred_at",
                                                      "aggregate_id")}
        try:
            return (_ENV.from_string(self.title).render(context).strip(),
                    _ENV.from_string(self.template).render(context).strip())
        except TemplateError as exc:
            raise RuleError(f"rule {self.id}: {exc}") from None


def load(raw_rules):
    rules = [Rule.of(r) for r in raw_rules or ()]
    ids = [r.id for r in rules]
    if len(ids) != len(set(ids)):
        raise RuleError("rule ids must be unique")
    return rules


def notification_id(event_id, rule_id, recipient):
    """The same event, rule and person always give the same notification."""
    return hashlib.sha256(f"{event_id}|{rule_id}|{recipient}".encode()).hexdigest()[:32]


def notifications(event, rules):
    """Every notification ``event`` causes: one per matching rule and recipient."""
    out = []
    for rule in rules:
        if not rule.matches(event):
            continue
        title, body = rule.render(event)
        for recipient in rule.recipients(event):
            out.append({"_id": notification_id(event["event_id"], rule.id, recipient),
                        "recipient": recipient, "rule": rule.id, "kind": rule.kind,
                        "urgent": int(rule.urgent), "title": title, "body": body,
                        "event_id": event["event_id"], "event_type": event["type"],
                        "aggregate_id": event.get("aggregate_id"),
                        "occurred_at": event.get("occurred_at"),
                        "origin": event.get("origin")})
    return out
