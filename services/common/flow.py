"""A small table-driven state machine for documents with a ``state`` field.

A ``Flow`` knows, for each action, the states it may start from, the state it
leads to (``None``: stays) and who may take it. ``check`` refuses an action the
state does not allow with a 409 naming the current state and the actions that
are allowed now, and an action the actor may not take with a 403. Pure.
"""
from dataclasses import dataclass

from .problems import Conflict, Forbidden


@dataclass(frozen=True)
class Step:
    sources: frozenset
    target: str = None          # None: the state stays
    may: object = None          # (actor, doc) -> bool
    label: str = ""


class Flow:
    def __init__(self, noun, labels, steps):
        self.noun, self.labels, self.steps = noun, labels, steps

    def allowed(self, state):
        return sorted(a for a, s in self.steps.items() if state in s.sources)

    def actions_for(self, doc, actor):
        """What ``actor`` could do to ``doc`` now (for user interfaces)."""
        return [a for a in self.allowed(doc["state"]) if self.steps[a].may(actor, doc)]

    def view(self, doc, actor):
        """``doc`` with its state's label and what ``actor`` could do now."""
        out = dict(doc)
        out["state_label"] = self.labels[doc["state"]]
        out["allowed_actions"] = self.actions_for(doc, actor)
        return out

    def check(self, doc, action, actor):
        """The target state of ``action`` on ``doc``, or a 409/403 problem."""
        step = self.steps[action]
        state = doc["state"]
        if state not in step.sources:
            raise Conflict(f"{self.noun}当前状态为“{self.labels[state]}”，不能{step.label or action}",
                           current_state=state, allowed_actions=self.allowed(state))
        if not step.may(actor, doc):
            raise Forbidden(f"当前角色不能对该{self.noun}执行“{step.label or action}”")
        return step.target or state


def anyone(actor, doc):
    return True
