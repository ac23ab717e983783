"""Importing past years' proposals (历史提案导入) by replaying their actions.

Every record is a proposal and the dated actions taken on it. The actions of
the whole batch are replayed in date order through the same state machine as
live requests, so merge targets are in the state they had that day and every
stored proposal is one the rules could have produced. A record whose replay
breaks a rule is refused as a whole, with the reason; the others are kept.
"""
import hashlib
from services.common.problems import Problem

from . import domain


def history_id(org, ref):
    return f"{org}-h{hashlib.sha1(ref.encode()).hexdigest()[:12]}"


def replay(records, *, org, rules, members, units, find_ref, next_number, today):
    """``records`` are validated import records. ``find_ref(ref)`` finds an
    already stored proposal; ``next_number()`` gives the next 提案号.
    Returns ``(docs, report)``."""
    report = {"received": len(records), "imported": 0, "skipped": 0, "errors": []}
    docs, steps, failed = {}, [], set()
    admin = domain.Actor.of("import", ["admin"])
    seen = set()
    for i, record in enumerate(records):
        ref = record["ref"]
        if ref in seen or find_ref(ref) is not None:
            report["skipped"] += 1
            failed.add(i)
            continue
        seen.add(ref)
        try:
            doc, _ = domain.new_proposal(
                record["proposal"], admin, proposal_id=history_id(org, ref), org=org,
                today=record["created_on"], members=members)
        except Problem as exc:
            _refuse(report, failed, i, ref, None, exc)
            continue
        doc["ref"] = ref
        dates = [record["created_on"]] + [a["on"] for a in record["actions"]]
        if max(dates) > today or min(dates) != record["created_on"]:
            _refuse(report, failed, i, ref, None, Problem(
                "操作日期不能早于创建日期，也不能晚于今天"))
            continue
        docs[i] = doc
        steps.extend((a["on"], i, j) for j, a in enumerate(record["actions"]))
    by_ref = {records[i]["ref"]: i for i in docs}
    by_id = {doc["_id"]: doc for doc in docs.values()}
    for on, i, j in sorted(steps):
        if i in failed:
            continue
        action = records[i]["actions"][j]
        data = dict(action["data"])
        target = None
        target_ref = data.pop("merged_into_ref", None)
        if target_ref is not None:
            k = by_ref.get(target_ref)
            target = docs.get(k) if k is not None and k not in failed else find_ref(target_ref)
            data["merged_into"] = target["_id"] if target else f"ref:{target_ref}"
        elif domain.merge_target_id(docs[i], data):
            target = by_id.get(domain.merge_target_id(docs[i], data))
        ctx = domain.Context(members=members, units=units, merge_target=target,
                             next_number=lambda year=on.year: next_number(year))
        actor = domain.Actor.of("import", action["as_"])
        try:
            fields, _ = domain.act(docs[i], action["action"], data, actor, rules, on, ctx)
        except Problem as exc:
            _refuse(report, failed, i, records[i]["ref"], j, exc)
            continue
        docs[i].update(fields)
    kept = [doc for i, doc in sorted(docs.items()) if i not in failed]
    report["imported"] = len(kept)
    return kept, report


def _refuse(report, failed, index, ref, action_index, exc):
    failed.add(index)
    report["errors"].append({"record": index, "ref": ref, "action": action_index,
                             "message": exc.detail, "errors": exc.errors or {}})

