"""Members (委员) registry rules: pure functions, no I/O, no framework.

A *membership* is one person's seat on one platform's committee for one term;
a person is identified across platforms by a keyed hash of the resident ID
number, so the same person on a county and a city committee is one person with
two memberships. Personal fields never leave this service in events.
"""
import hashlib
import hmac
import re
from datetime import date

from services.common.decisions import Aggregate, Decision
from services.common.problems import Conflict, Invalid

PARTIES = {"cpc": "中共", "rcckmt": "民革", "cdl": "民盟", "cndca": "民建", "capd": "民进",
           "pwdp": "农工党", "zgd": "致公党", "jsfs": "九三学社", "tdsgl": "台盟",
           "none": "无党派"}
ROLES = {"chair": "主席", "vice_chair": "副主席", "standing": "常委", "member": "委员"}
GENDERS = {"male": "男", "female": "女"}
APPOINTMENTS = {"election": "换届", "by_election": "增补"}
STATUSES = {"active": "在任", "removed": "撤销", "resigned": "辞去", "term_ended": "届满"}

PERSONAL_FIELDS = ("phone", "id_number", "birth_date", "email", "wechat_openid")
PROFILE_FIELDS = ("name", "gender", "ethnicity", "birth_date", "party", "sector",
                  "committees", "role", "term", "employer", "post", "phone", "id_number",
                  "appointment", "appointed_on", "email", "wechat_openid")

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_ID = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def mobile_ok(value):
    return bool(_MOBILE.match(value or ""))


def id_check_digit(first17):
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


def id_number_problem(value):
    """Why a GB 11643 resident ID number is wrong (Chinese), or None."""
    value = (value or "").upper()
    if not _ID.match(value):
        return "身份证号应为 18 位（末位可为 X）"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "身份证号中的出生日期无效"
    if id_check_digit(value[:17]) != value[17]:
        return "身份证号校验位不正确"
    return None


def birth_date_from_id(id_number):
    return f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"


def person_key(id_number, secret):
    """Keyed hash of the ID number: the same person on every platform sharing
    the key, and not reversible without it."""
    mac = hmac.new(secret.encode(), id_number.upper().encode(), hashlib.sha256)
    return "p" + mac.hexdigest()[:31]


def membership_id(org, person_id, term):
    """Business key of a membership: stable, so re-imports find it again."""
    digest = hashlib.sha256(f"{org}|{person_id}|{term}".encode()).hexdigest()
    return f"m{org}{digest[:12]}"


def mask_phone(phone):
    return phone[:3] + "****" + phone[-4:] if phone else phone


def mask_id(id_number):
    return id_number[:4] + "*" * 10 + id_number[-4:] if id_number else id_number


def code_errors(data, *, sectors, committees, terms):
    """Per-platform code lists (界别, 专委会, 届次) as field errors."""
    errors = {}
    if "sector" in data and data["sector"] not in sectors:
        errors["sector"] = [f"界别应为本平台配置的：{'、'.join(sectors)}"]
    if "committees" in data:
        unknown = [c for c in data["committees"] if c not in committees]
        if unknown:
            errors["committees"] = [f"未配置的专委会：{'、'.join(unknown)}"]
        elif not data["committees"]:
            errors["committees"] = ["每位委员至少属于一个专委会（全员入委）"]
        elif len(set(data["committees"])) != len(data["committees"]):
            errors["committees"] = ["专委会不能重复"]
    if "term" in data and data["term"] not in terms:
        errors["term"] = [f"届次应为：{'、'.join(terms)}"]
    if data.get("id_number") and data.get("birth_date"):
        if birth_date_from_id(data["id_number"].upper()) != str(data["birth_date"]):
            errors["birth_date"] = ["出生日期与身份证号不一致"]
    return errors


def member_errors(schema_errors, valid, codes):
    """Every problem of one member's data at once: the schema's field errors
    and, for the fields that passed it, the platform's code lists (so 界别 and
    专委会 are reported together with a wrong phone, not after it is fixed)."""
    errors = {k: list(v) for k, v in (schema_errors or {}).items()}
    for name, messages in code_errors(normalise(valid or {}), **codes).items():
        errors.setdefault(name, messages)
    return errors


def normalise(data):
    out = dict(data)
    if out.get("id_number"):
        out["id_number"] = out["id_number"].upper()
        if not out.get("birth_date"):
            out["birth_date"] = birth_date_from_id(out["id_number"])
    for key in ("birth_date", "appointed_on"):
        if isinstance(out.get(key), date):
            out[key] = out[key].isoformat()
    if "committees" in out:
        out["committees"] = list(out["committees"])
    return out


def public_view(member):
    """What may leave the service: no phone, ID number or birth date."""
    keys = ("name", "gender", "ethnicity", "party", "sector", "committees", "role",
            "term", "employer", "post", "status", "status_reason", "appointment",
            "appointed_on", "ended_on", "stations", "org", "person_id")
    view = {k: member.get(k) for k in keys if k in member}
    view["member_id"] = member["_id"]
    return view


def appoint(data, *, org, person_secret):
    """A new membership from validated, normalised input: (doc, event payload)."""
    data = normalise(data)
    person_id = person_key(data["id_number"], person_secret)
    doc = {k: data.get(k) for k in PROFILE_FIELDS}
    doc.setdefault("appointment", None)
    doc.update({"_id": membership_id(org, person_id, data["term"]), "org": org,
                "person_id": person_id, "status": "active", "status_reason": None,
                "ended_on": None, "stations": []})
    doc["appointment"] = doc["appointment"] or "election"
    return doc, public_view(doc)


def require_active(member, action):
    if member["status"] != "active":
        raise Conflict(f"委员当前状态为「{STATUSES[member['status']]}」，不能{action}",
                       current_state=member["status"], allowed_actions=[])


def changes(member, data):
    """Fields of ``data`` that differ from ``member`` (normalised)."""
    data = normalise(data)
    return {k: v for k, v in data.items() if k in PROFILE_FIELDS and member.get(k) != v}


def update(member, data):
    """(fields to set, event payload) for an edit; payload names personal fields
    that changed but never their values."""
    require_active(member, "修改")
    changed = changes(member, data)
    if "term" in changed or "id_number" in changed:
        raise Invalid({k: ["届次和身份证号变更请撤销后重新任命"] for k in ("term", "id_number")
                       if k in changed})
    if not changed:
        return {}, None
    after = dict(member, **changed)
    return changed, {"changed": sorted(changed), "member": public_view(after)}


def end(member, *, status, reason, on):
    """Removal (撤销), resignation or end of term: (fields, event type, payload)."""
    verbs = {"removed": "撤销", "resigned": "辞去", "term_ended": "届满离任"}
    require_active(member, verbs[status])
    fields = {"status": status, "status_reason": reason, "ended_on": on}
    event_type = "member.term_ended" if status == "term_ended" else "member.removed"
    payload = {"member": public_view(dict(member, **fields)), "status": status,
               "reason": reason, "ended_on": on}
    return fields, event_type, payload


def view(member, *, full):
    """A membership as an API response; personal fields masked unless ``full``."""
    out = public_view(member)
    out["id"] = out.pop("member_id")
    out["seq"] = member.get("seq")
    out["birth_date"] = member.get("birth_date") if full else None
    out["phone"] = member.get("phone") if full else mask_phone(member.get("phone"))
    out["id_number"] = member.get("id_number") if full else mask_id(member.get("id_number"))
    out["email"] = member.get("email") if full else None
    out["wechat_openid"] = member.get("wechat_openid") if full else None
    return out


# --- roster roll-up (三级联动) -----------------------------------------------
ROSTER_FIELDS = ("name", "gender", "ethnicity", "party", "sector", "committees", "role",
                 "term", "employer", "post", "status", "org", "person_id")


def linked_view(copy):
    """A county's membership as its city holds it (the roster copy)."""
    out = {k: copy.get(k) for k in ROSTER_FIELDS}
    out["id"] = copy["_id"]
    out["status_label"] = STATUSES.get(copy.get("status"), copy.get("status"))
    return out


def roster_entry(member):
    """A membership as the parent platform keeps it: public fields only."""
    out = {k: member.get(k) for k in ROSTER_FIELDS}
    out["member_id"] = member["_id"]
    return out


def synced(member, parent_org):
    """A county's membership change goes up to its city (public fields only):
    the linked events of a change that leaves ``member`` as given."""
    return [("member.synced", roster_entry(member), parent_org)] if parent_org else []


MEMBERS = Aggregate("members", "委员")   # the endpoints say who may read or change


def appointed(doc, payload, parent_org):
    return Decision({}, [("member.appointed", payload)], synced(doc, parent_org))


def updated(member, data, parent_org):
    """The office changed a membership: nothing when nothing changed."""
    fields, payload = update(member, data)
    if not fields:
        return Decision()
    return Decision(fields, [("member.updated", payload)],
                    synced(dict(member, **fields), parent_org))


def ended(member, *, status, reason, on, parent_org):
    fields, event_type, payload = end(member, status=status, reason=reason, on=on)
    return Decision(fields, [(event_type, payload)], synced(dict(member, **fields), parent_org))


def counts(memberships):
    """Active memberships by sector, party, committee and role."""
    active = [m for m in memberships if m.get("status") == "active"]
    tally = {"by_sector": {}, "by_party": {}, "by_committee": {}, "by_role": {}}
    for m in active:
        for key, values in (("by_sector", [m.get("sector")]), ("by_party", [m.get("party")]),
                            ("by_committee", m.get("committees") or []),
                            ("by_role", [m.get("role")])):
            for v in values:
                if v:
                    tally[key][v] = tally[key].get(v, 0) + 1
    return dict(active=len(active), **{k: dict(sorted(v.items())) for k, v in tally.items()})


def rollup(own_org, own_name, own, linked, children):
    """The city's view: its own committee and each county's, and the people
    across them — a person on several committees (same ``person_id``) once."""
    by_org = {}
    for m in linked:
        by_org.setdefault(m["org"], []).append(m)
    names = dict(children)
    platforms = [dict(counts(own), org=own_org, org_name=own_name, level="own")]
    for org in sorted(set(names) | set(by_org)):
        platforms.append(dict(counts(by_org.get(org, [])), org=org,
                              org_name=names.get(org, org), level="linked",
                              received=len(by_org.get(org, []))))
    seats = {}
    for m in list(own) + list(linked):
        if m.get("status") == "active" and m.get("person_id"):
            seats.setdefault(m["person_id"], set()).add(m.get("org"))
    return {"platforms": platforms,
            "people": {"memberships": sum(len(v) for v in seats.values()),
                       "persons": len(seats),
                       "on_several_committees": sum(1 for v in seats.values() if len(v) > 1)}}
