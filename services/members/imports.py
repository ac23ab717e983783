"""Roster import planning: rows → creates and updates, with a row-by-row report.

Pure: the caller looks existing memberships up and writes the plan. The same
file imported twice plans nothing the second time (idempotent re-import).
"""
from marshmallow import ValidationError

from services.common.problems import Invalid, flatten_errors

from . import domain, roster
from .schemas import member_in


def plan(data, filename, *, org, settings, lookup):
    """(report, creates [(doc, payload)], updates [(row, member, fields, payload)]).

    ``lookup(ids) -> {id: doc}``; ``settings`` has sectors, committees, terms
    and the person key secret.
    """
    try:
        header, rows, encoding = roster.read_table(data, filename)
        numbered = roster.records(header, rows)
    except roster.RosterError as exc:
        raise Invalid({"file": [str(exc)]}) from None
    report = {"encoding": encoding, "rows": len(numbered), "created": 0, "updated": 0,
              "unchanged": 0, "errors": []}
    candidates = []
    seen = {}
    for row_number, raw in numbered:
        data_in = roster.to_input(raw)
        status = data_in.pop("status", "active")   # 状态: an export's ended members too
        try:
            loaded, errors, valid = member_in.load(data_in), {}, None
        except ValidationError as exc:
            loaded, errors = None, flatten_errors(exc.messages)
            valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        errors = domain.member_errors(errors, loaded if loaded is not None else valid,
                                      settings["codes"])
        errors.update(roster.cell_errors(raw))
        if status not in domain.STATUSES:
            errors["status"] = ["invalid"]
        for name in errors:   # the sheet's labels, not the API's codes
            if roster.label_message(name) and (name in data_in or name == "status"):
                errors[name] = [roster.label_message(name)]
        if errors:
            report["errors"].extend(
                {"row": row_number, "field": name,
                 "column": roster.FIELD_TO_HEADER.get(name, name), "message": msg}
                for name, msgs in errors.items() for msg in msgs)
            continue
        doc, payload = domain.appoint(loaded, org=org, person_secret=settings["person_secret"])
        if doc["_id"] in seen:
            report["errors"].append({"row": row_number, "field": "id_number",
                                     "column": "身份证号",
                                     "message": f"与第 {seen[doc['_id']]} 行是同一人同一届次"})
            continue
        seen[doc["_id"]] = row_number
        candidates.append((row_number, loaded, doc, payload, status))
    existing = lookup([doc["_id"] for _, _, doc, _, _ in candidates]) if candidates else {}
    creates, updates = [], []
    for row_number, loaded, doc, payload, status in candidates:
        current = existing.get(doc["_id"])
        problem = ended_row_problem(current, loaded, status)
        if problem == "unchanged":
            report["unchanged"] += 1
            continue
        if problem:
            report["errors"].append({"row": row_number, "field": "status", "column": "状态",
                                     "message": problem})
            continue
        if current is None:
            creates.append((doc, payload))
            continue
        try:
            fields, change_payload = domain.update(current, loaded)
        except Exception as exc:
            message = getattr(exc, "detail", str(exc))
            report["errors"].append({"row": row_number, "field": "_row", "column": "",
                                     "message": message})
            continue
        if fields:
            updates.append((row_number, current, fields, change_payload))
        else:
            report["unchanged"] += 1
    report["created"] = len(creates)
    report["updated"] = len(updates)
    return report, creates, updates


def ended_row_problem(current, loaded, status):
    """A row of a member who has left (or a row saying so): ``"unchanged"``
    when it matches what is stored, else the reason it cannot be applied, or
    ``None`` for an ordinary row of an active member."""
    stored = current.get("status", "active") if current else None
    if status == "active" and stored in (None, "active"):
        return None
    label = domain.STATUSES.get(status, status)
    if current is None:
        return f"表中状态为“{label}”的委员在本平台没有记录，不能导入为新委员"
    if stored != status:
        if stored == "active":
            return f"在任委员的离任（{label}）请在系统中办理，不能通过导入变更"
        return f"该委员已{domain.STATUSES.get(stored, stored)}，不能通过导入恢复或改变状态"
    if domain.changes(current, loaded):
        return f"已{label}委员的记录不能修改"
    return "unchanged"
