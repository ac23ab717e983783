"""What the command path is made of, pure (no nameko, no pymongo), so domain
modules declare their aggregates and return decisions: ``Decision`` (fields,
events, events for other platforms), ``Visibility`` (who may see an
aggregate, declared once: the list filter and the single-document check),
``Aggregate`` (collection, noun, visibility). See commands.py for the path.
"""
from dataclasses import dataclass, field

from .events import lookup
from .problems import Conflict, Forbidden, NotFound


@dataclass
class Decision:
    fields: dict = field(default_factory=dict)
    events: list = field(default_factory=list)      # (type, payload)
    linked: list = field(default_factory=list)      # (type, payload, to org)
    unset: tuple = ()

    @classmethod
    def of(cls, value):
        """A Decision from a domain function's result (a Decision, or the
        tuples ``(fields, events)`` / ``(fields, events, linked)``)."""
        if isinstance(value, Decision):
            return value
        return cls(*value)

    def __bool__(self):
        return bool(self.fields or self.events or self.linked or self.unset)

    def routed(self):
        """``linked`` as ``(type, payload, to, via)``, ``via`` from the registry."""
        return [(t, body, str(to), lookup(t).via) for t, body, to in self.linked]


@dataclass(frozen=True)
class See:
    """One way to see an aggregate: holding an id of role kind ``kind``
    (``station:st1`` → ``st1``) that ``field`` contains (a value or a list),
    or, for ``kind="sub"``, being the principal named in ``field`` when it has
    role ``role``."""
    kind: str
    field: str
    role: str = None

    def values(self, principal):
        if self.kind == "sub":
            return {principal.sub} if self.role in principal.roles else set()
        return principal.ids(self.kind)


class Visibility:
    """Who may see an aggregate, declared once; it yields both the query
    filter of a list and the check of a single document."""

    def __init__(self, noun, *rules, staff=("admin", "reviewer")):
        self.noun, self.rules, self.staff = noun, rules, tuple(staff)

    def sees_all(self, principal):
        return principal.has_any(self.staff)

    def query(self, principal):
        """The filter narrowing a list to what ``principal`` may see (None:
        everything); 403 when the principal may see none of them."""
        if self.sees_all(principal):
            return None
        ors = [{rule.field: value} for rule in self.rules
               for value in sorted(rule.values(principal))]
        if not ors:
            raise Forbidden(f"当前角色无权查看{self.noun}")
        return ors[0] if len(ors) == 1 else {"$or": ors}

    def allows(self, doc, principal):
        if self.sees_all(principal):
            return True
        for rule in self.rules:
            held = doc.get(rule.field)
            held = set(held) if isinstance(held, (list, tuple, set, dict)) else {held}
            if held & rule.values(principal):
                return True
        return False

    def narrow(self, query, principal):
        """``query`` (a dict, possibly empty) limited to what ``principal`` sees."""
        scope = self.query(principal)
        if not scope:
            return query
        return {"$and": [query, scope]} if query else scope


@dataclass(frozen=True)
class Aggregate:
    """One kind of aggregate of a service."""
    collection: str
    noun: str                      # 提案, 诉求 … (for messages)
    visibility: Visibility = None  # None: whoever may call the endpoint sees it

    def load(self, db, aggregate_id, principal=None):
        """The document, or 404 when absent or not visible to ``principal``."""
        doc = db[self.collection].find_one({"_id": aggregate_id})
        if doc is None or (principal is not None and self.visibility is not None
                           and not self.visibility.allows(doc, principal)):
            raise NotFound(f"{self.noun} {aggregate_id} 不存在")
        return doc


def check_seq(doc, expected):
    """409 when the caller's ``seq`` is not the document's (someone changed it)."""
    if expected is not None and expected != doc["seq"]:
        raise Conflict("记录已被他人修改，请刷新后重试", current_seq=doc["seq"],
                       current_state=doc.get("state"))
    return doc
