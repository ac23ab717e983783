"""A generated year imported through HTTP: statistics, exports, routing, units."""
import io
from collections import Counter
from datetime import date

import pytest
from openpyxl import load_workbook

from services.common.workdays import WorkCalendar
from deploy.demo_data import members as members_demo
from deploy.demo_data import proposals as demo
from tests.service.test_proposals_flow import Platform, content
from tests.support import Client

pytestmark = pytest.mark.service

YEAR = date.today().year - 1


@pytest.fixture
def county(run_service, config, probe):
    proposals = dict(config["PROPOSALS"])
    proposals["session_windows"] = list(proposals["session_windows"]) + [
        {"session": "上年全会", "opens": f"{YEAR}-01-05", "closes": f"{YEAR}-01-11"}]
    config["PROPOSALS"] = proposals
    platform = Platform(run_service, config, probe)
    roster = members_demo.roster_csv(members_demo.members(40))
    resp = platform.members_admin.post("/api/v1/members/import", data=roster,
                                       headers={"Content-Type": "text/csv"})
    assert resp.status_code == 200 and resp.json()["created"] == 40, resp.text
    platform.member_ids = [m["id"] for m in platform.members_admin.get(
        "/api/v1/members?limit=100").json()["items"]]
    for unit in demo.units():
        assert platform.admin.post("/api/v1/units", json=unit).status_code == 201
    return platform


def generated_year(county, n):
    records = demo.year_of_proposals(county.member_ids, year=YEAR, until=date(YEAR, 12, 31),
                                     session_days=(date(YEAR, 1, 6), date(YEAR, 1, 9)), n=n)
    resp = county.admin.post("/api/v1/proposals/import", json={"proposals": records})
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["errors"] == [] and report["imported"] == n
    return records


def expected_figures(records, calendar):
    """The statistics counted straight from the records' actions."""
    out = Counter()
    units = set()
    for r in records:
        acts = r["actions"]
        names = [a["action"] for a in acts]
        if "submit" not in names:
            continue
        out["submitted"] += 1
        proposed = next((a["data"]["decision"] for a in acts if a["action"] == "propose"), None)
        if "decide" not in names:
            continue
        out[proposed] += 1
        if proposed != "register":
            continue
        out["registered"] += 1
        out[r["proposal"]["kind"]] += 1
        out["cat_" + r["proposal"]["category"]] += 1
        out["key"] += "mark_key" in names
        evaluators = 1 if r["proposal"]["kind"] == "collective" else \
            1 + names.count("confirm_cosign")
        assigned_on, pending, released, first_release = None, None, None, None
        ratings, outcome = [], None
        for a in acts:
            if a["action"] in ("assign", "reassign"):
                assigned_on = date.fromisoformat(a["on"])
                units.add(a["data"]["lead_unit"])
                units.update(a["data"].get("co_units") or ())
            elif a["action"] == "answer":
                pending = a["data"]["category"]
            elif a["action"] == "release":
                released, ratings = pending, []
                if first_release is None:
                    first_release = date.fromisoformat(a["on"])
                    due = calendar.add_months(assigned_on, 3)
                    out["on_time"] += first_release <= due
            elif a["action"] == "evaluate":
                ratings.append(a["data"]["rating"])
                if len(ratings) == evaluators:
                    outcome = next(x for x in ("dissatisfied", "basically_satisfied",
                                               "satisfied") if x in ratings)
        if released:
            out["replied"] += 1
            out["ans_" + released] += 1
        if outcome:
            out["eval_" + outcome] += 1
    out["units"] = len(units)
    return out


def test_statistics_of_a_generated_year_match_independent_counts(county):
    records = generated_year(county, 160)
    calendar = WorkCalendar.from_config(county.config["PROPOSALS"]["calendar"])
    want = expected_figures(records, calendar)
    resp = county.reviewer.get(f"/api/v1/proposals/statistics?year={YEAR}")
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["submitted"] == want["submitted"] > 100
    assert got["registered"] == want["registered"]
    assert got["by_kind"]["member"]["count"] == want["member"]
    assert got["by_kind"]["collective"]["count"] == want["collective"]
    assert got["by_category"]["livelihood"]["count"] == want["cat_livelihood"]
    assert got["units_involved"] == want["units"]
    assert got["replied"] == want["replied"] and got["replied_on_time"] == want["on_time"]
    for c in "ABCD":
        assert got["answer_categories"][c]["count"] == want["ans_" + c]
    for rating in ("satisfied", "basically_satisfied", "dissatisfied"):
        assert got["evaluation"][rating]["count"] == want["eval_" + rating]
    assert got["key"] == want["key"]
    for decision, field in (("merge", "merged"), ("reject", "rejected"),
                            ("convert_to_suggestion", "converted_to_suggestion"),
                            ("convert_to_opinion", "converted_to_opinion"),
                            ("return", "returned")):
        assert got[field] == want[decision], field
    assert got["registration_rate"] == round(want["registered"] / want["submitted"], 4)

    resp = county.reviewer.get(f"/api/v1/proposals/statistics.xlsx?year={YEAR}")
    assert resp.status_code == 200
    book = load_workbook(io.BytesIO(resp.content), read_only=True)
    table, listing = book.worksheets
    rows = [list(r) for r in table.iter_rows(values_only=True)]
    assert rows[0] == ["项目", "数量", "比例"]
    assert [[c if c is not None else "" for c in r] for r in rows[1:]] == got["table"]
    assert sum(1 for _ in listing.iter_rows()) == 1 + want["submitted"]

    # importing the same records again adds nothing
    resp = county.admin.post("/api/v1/proposals/import", json={"proposals": records[:20]})
    assert resp.json()["skipped"] == 20 and resp.json()["imported"] == 0
    assert county.reviewer.get(f"/api/v1/proposals/statistics?year={YEAR}").json()[
        "submitted"] == want["submitted"]
    # a unit token or a member token may not read the statistics
    assert Client(county.config, "unit:jyj").get(
        "/api/v1/proposals/statistics").status_code == 403


def test_routing_suggests_the_unit_past_assignments_point_to(county):
    generated_year(county, 120)
    lead = county.member_ids[0]
    member = county.as_member(lead)
    pid = member.post("/api/v1/proposals", json=content(
        title="关于加强农村学校教师队伍建设的建议", cosigners=[])).json()["id"]
    county.act(member, pid, "submit")
    county.act(county.reviewer, pid, "classify")
    county.act(county.reviewer, pid, "propose", decision="register")
    county.act(county.reviewer, pid, "decide")
    resp = county.reviewer.get(f"/api/v1/proposals/{pid}/routing")
    assert resp.status_code == 200, resp.text
    advice = resp.json()
    assert advice["lead_unit"] == "jyj" and advice["learned_from"] > 50
    scores = [r["score"] for r in advice["ranked"]]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 5
    body = county.act(county.admin, pid, "assign", lead_unit=advice["lead_unit"],
                      co_units=advice["co_units"], routing="accepted")
    assert body["lead_unit"] == "jyj"


def test_unit_directory(county):
    admin = county.admin
    assert admin.post("/api/v1/units", json={"id": "jyj", "name": "重复", "kind": "government"}
                      ).status_code == 409
    resp = admin.post("/api/v1/units", json={"id": "Bad Id", "name": "", "kind": "x"})
    assert resp.status_code == 422 and set(resp.json()["errors"]) == {"id", "name", "kind"}
    resp = admin.patch("/api/v1/units/jyj", json={"active": False})
    assert resp.status_code == 200 and resp.json()["active"] is False
    # contacts are for staff and the unit itself
    assert "contacts" not in Client(county.config, "member:x").get("/api/v1/units/wjj").json()
    assert "contacts" in Client(county.config, "unit:wjj").get("/api/v1/units/wjj").json()
    lead = county.member_ids[0]
    member = county.as_member(lead)
    pid = member.post("/api/v1/proposals", json=content(cosigners=[])).json()["id"]
    county.act(member, pid, "submit")
    county.act(county.reviewer, pid, "classify")
    county.act(county.reviewer, pid, "propose", decision="register")
    county.act(county.reviewer, pid, "decide")
    resp = admin.post(f"/api/v1/proposals/{pid}/actions/assign", json={"lead_unit": "jyj"})
    assert resp.status_code == 422 and "lead_unit" in resp.json()["errors"]
    units = admin.get("/api/v1/units?limit=100").json()["items"]
    assert len(units) == len(demo.UNITS)
