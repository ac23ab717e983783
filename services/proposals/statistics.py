"""The proposal statistics as work reports print them, from stored proposals.

Pure: takes proposal documents, returns figures. Rates are fractions (0..1)
rounded to four places; ``table`` gives the rows as the report prints them.
"""
from collections import Counter

from .domain import ANSWER_CATEGORIES, CATEGORIES, RATINGS, REGISTERED_ONWARD

# the provincial committee's states (through the provincial adapter)
PROVINCE_REGISTERED = frozenset({"registered", "assigned", "answered", "closed"})
PROVINCE_ANSWERED = frozenset({"answered", "closed"})
ANSWERED_ONWARD = frozenset({"awaiting_evaluation", "satisfied", "basically_satisfied",
                             "dissatisfied", "rehandling", "closed"})


def forwarded_upward(docs):
    """Proposals this platform forwarded to the next level, and what became
    of them there and, forwarded on, at the province: the 联动提案 figures."""
    sent = [d for d in docs if d["state"] == "forwarded"]
    above = [d.get("upstream") or {} for d in sent]
    # a city's own forward goes to the province; a county's may be forwarded on
    at_province = [u if u.get("by") == "province" else (u.get("province") or {}) for u in above]
    next_level = [u for u in above if u.get("by") != "province"]
    return {"total": len(sent),
            "registered_above": sum(1 for u in next_level if u.get("state") in REGISTERED_ONWARD)
            + sum(1 for u in above if u.get("by") == "province"
                  and u.get("state") in PROVINCE_REGISTERED),
            "answered_above": sum(1 for u in next_level if u.get("state") in ANSWERED_ONWARD)
            + sum(1 for u in above if u.get("by") == "province"
                  and u.get("state") in PROVINCE_ANSWERED),
            "reached_province": sum(1 for p in at_province if p),
            "registered_at_province": sum(1 for p in at_province
                                          if p.get("state") in PROVINCE_REGISTERED),
            "answered_at_province": sum(1 for p in at_province
                                        if p.get("state") in PROVINCE_ANSWERED)}


def _rate(part, whole):
    return round(part / whole, 4) if whole else None


def _shares(counter, whole, keys):
    return {k: {"count": counter.get(k, 0), "share": _rate(counter.get(k, 0), whole)}
            for k in keys}


def in_period(doc, year=None, session=None):
    if session is not None:
        return doc.get("session") == session
    return year is None or doc.get("year") == year


def compute(docs, year=None, session=None):
    docs = [d for d in docs if d.get("submitted_at") and in_period(d, year, session)]
    submitted = len(docs)
    registered = [d for d in docs if d.get("registered_at")]
    n_reg = len(registered)
    kinds = Counter(d["kind"] for d in registered)
    categories = Counter(d.get("category") for d in registered)
    states = Counter(d["state"] for d in docs)
    units = set()
    for d in registered:
        units.update(d.get("handlers") or ())
    replied = [d for d in registered if d.get("released_at")]
    on_time = sum(1 for d in replied if d.get("on_time"))
    evaluated = Counter(d["evaluation"] for d in registered if d.get("evaluation"))
    n_eval = sum(evaluated.values())
    answers = Counter(d.get("answer_category") for d in replied)
    key = sum(1 for d in registered if d.get("key"))
    figures = {
        "period": {"year": year, "session": session},
        "submitted": submitted,
        "registered": n_reg,
        "registration_rate": _rate(n_reg, submitted),
        "by_kind": _shares(kinds, n_reg, ("member", "collective", "linked")),
        "by_category": _shares(categories, n_reg, CATEGORIES),
        "livelihood_share": _rate(categories.get("livelihood", 0), n_reg),
        "units_involved": len(units),
        "assigned": sum(1 for d in registered if d.get("assigned_at")),
        "replied": len(replied),
        "reply_rate": _rate(len(replied), n_reg),
        "replied_on_time": on_time,
        "on_time_rate": _rate(on_time, len(replied)),
        "evaluated": n_eval,
        "evaluation": _shares(evaluated, n_eval, RATINGS),
        "satisfaction_rate": _rate(evaluated.get("satisfied", 0), n_eval),
        "satisfied_or_basic_rate": _rate(evaluated.get("satisfied", 0)
                                         + evaluated.get("basically_satisfied", 0), n_eval),
        "answer_categories": _shares(answers, len(replied), ANSWER_CATEGORIES),
        "key": key,
        "excellent": sum(1 for d in registered if d.get("excellent")),
        "merged": states.get("merged", 0),
        "converted_to_suggestion": states.get("converted_to_suggestion", 0),
        "converted_to_opinion": states.get("converted_to_opinion", 0),
        "rejected": states.get("rejected", 0),
        "forwarded": states.get("forwarded", 0),
        "forwarded_upward": forwarded_upward(docs),
        "returned": states.get("returned", 0),
        "in_review": sum(states.get(s, 0) for s in ("submitted", "cosigning",
                                                    "under_review")),
        "closed": states.get("closed", 0),
        "overdue": sum(1 for d in registered if d.get("overdue")),
    }
    figures["table"] = table(figures)
    return figures


def _pct(rate):
    return "—" if rate is None else f"{rate * 100:.1f}%"


def table(f):
    """Rows ``[项目, 数值, 比例]`` in the order a work report gives them."""
    rows = [["收到提案", f["submitted"], ""],
            ["立案", f["registered"], _pct(f["registration_rate"])],
            ["其中：委员提案", f["by_kind"]["member"]["count"],
             _pct(f["by_kind"]["member"]["share"])],
            ["其中：集体提案", f["by_kind"]["collective"]["count"],
             _pct(f["by_kind"]["collective"]["share"])]]
    if f["by_kind"]["linked"]["count"]:
        rows.append(["其中：下级转来联动提案", f["by_kind"]["linked"]["count"],
                     _pct(f["by_kind"]["linked"]["share"])])
    for code, label in CATEGORIES.items():
        c = f["by_category"][code]
        rows.append([f"{label}类", c["count"], _pct(c["share"])])
    rows += [["承办单位", f["units_involved"], ""],
             ["已办复", f["replied"], _pct(f["reply_rate"])],
             ["按期办复", f["replied_on_time"], _pct(f["on_time_rate"])]]
    for code, label in ANSWER_CATEGORIES.items():
        c = f["answer_categories"][code]
        rows.append([f"{code}类（{label}）", c["count"], _pct(c["share"])])
    for code, label in RATINGS.items():
        c = f["evaluation"][code]
        rows.append([label, c["count"], _pct(c["share"])])
    rows += [["满意及基本满意", "", _pct(f["satisfied_or_basic_rate"])],
             ["重点提案", f["key"], ""], ["优秀提案", f["excellent"], ""],
             ["并案", f["merged"], ""], ["转意见建议", f["converted_to_suggestion"], ""],
             ["转社情民意", f["converted_to_opinion"], ""], ["不予立案", f["rejected"], ""],
             ["转上级政协办理", f["forwarded"], ""]]
    up = f["forwarded_upward"]
    if up["total"]:
        rows += [["其中：上级政协已立案", up["registered_above"], ""],
                 ["其中：上级政协已答复", up["answered_above"], ""],
                 ["其中：转至省政协", up["reached_province"], ""],
                 ["其中：省政协已立案", up["registered_at_province"], ""]]
    rows += [["退回", f["returned"], ""], ["审查中", f["in_review"], ""],
             ["已办结", f["closed"], ""], ["逾期未办", f["overdue"], ""]]
    return rows
