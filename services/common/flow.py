"""The one kind of state machine every aggregate uses. Pure.

A ``Flow`` knows, for each action, the states it may start from, the state it
leads to (``None``: the action's own code sets it, or it stays), who may take
it and, optionally, a ``blocked(action, doc, actor, today)`` hook for what
else stops an action now (a deadline passed, an earlier step missing).

``check`` refuses in one order for every aggregate: the actor may not take the
action → 403; the state does not allow it → 409 naming the current state and
what the actor can do now; ``blocked`` says no → its problem. (404 for an
aggregate the caller cannot see comes before, from the command path.) The
same rules make ``actions_for``, so what is offered is what is accepted.
"""
from dataclasses import dataclass

from .problems import Conflict, Forbidden


@dataclass(frozen=True)
class Step:
    sources: frozenset
    target: str = None          # None: set by the action's code, or the state stays
    may: object = None          # (actor, doc) -> bool
    label: str = ""             # 派单, 接单 … (for messages)
    who: str = ""               # 提案人, 主办单位 … who may take it (for messages)


def anyone(actor, doc):
    return True


class Flow:
    def __init__(self, noun, labels, steps, blocked=None):
        self.noun, self.labels, self.steps, self.blocked = noun, labels, steps, blocked

    def allowed(self, state):
        return sorted(a for a, s in self.steps.items() if state in s.sources)

    def _may(self, step, actor, doc):
        return (step.may or anyone)(actor, doc)

    def actions_for(self, doc, actor, today=None):
        """Exactly what ``actor`` can do to ``doc`` now (for user interfaces)."""
        return [a for a in self.allowed(doc["state"])
                if self._may(self.steps[a], actor, doc)
                and (self.blocked is None or self.blocked(a, doc, actor, today) is None)]

    def view(self, doc, actor, today=None):
        """``doc`` with its state's label and what ``actor`` could do now."""
        out = dict(doc)
        out["state_label"] = self.labels[doc["state"]]
        out["allowed_actions"] = self.actions_for(doc, actor, today)
        return out

    def check(self, doc, action, actor, today=None):
        """The target state of ``action`` on ``doc`` (None: set by the action),
        or a 403, then 409, problem."""
        step = self.steps[action]
        what = step.label or "执行该操作"
        if not self._may(step, actor, doc):
            raise Forbidden(f"只有{step.who}可以{what}" if step.who
                            else f"当前角色不能对该{self.noun}{what}")
        state = doc["state"]
        if state not in step.sources:
            raise Conflict(f"{self.noun}当前状态为“{self.labels[state]}”，不能{what}",
                           current_state=state,
                           allowed_actions=self.actions_for(doc, actor, today))
        if self.blocked is not None:
            problem = self.blocked(action, doc, actor, today)
            if problem is not None:
                if isinstance(problem, Conflict):
                    problem.extra["allowed_actions"] = self.actions_for(doc, actor, today)
                raise problem
        return step.target or state
