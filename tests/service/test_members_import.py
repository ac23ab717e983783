"""Roster import and export through HTTP."""
import io

import pytest
from openpyxl import load_workbook

from deploy.demo_data import members as demo
from services.members import roster
from services.members.service import MembersService
from tests.support import Client, wait_until
from tests.service.test_members_api import members_collection

pytestmark = pytest.mark.service


@pytest.fixture
def admin(run_service, config):
    run_service(MembersService)
    return Client(config, "admin")


def upload(admin, data, dry_run=False, ctype="text/csv"):
    return admin.post("/api/v1/members/import", data=data,
                      params={"dry_run": "true"} if dry_run else None,
                      headers={"Content-Type": ctype})


def all_settled(config):
    """Every local event confirmed (roster copies for the city wait for a link)."""
    return all(all("link" in e for e in (d.get("_outbox") or {}).values())
               for d in members_collection(config).find({"_pending": 1}, {"_outbox": 1}))


def test_gbk_csv_with_bad_rows_reports_each_row_and_field(admin, config, probe):
    events = probe("members.events")
    rows = demo.members(6)
    text = demo.roster_csv(rows).decode("utf-8").splitlines()
    header, lines = text[0], text[1:]
    cols = header.split(",")
    bad_phone = lines[1].split(",")
    bad_phone[cols.index("手机")] = "12345"
    bad_phone[cols.index("界别")] = "不存在界"      # reported with the phone, not after it
    bad_party = lines[3].split(",")
    bad_party[cols.index("党派")] = "某党"
    bad_party[cols.index("专委会")] = ""
    lines[1], lines[3] = ",".join(bad_phone), ",".join(bad_party)
    gbk = ("\n".join([header] + lines) + "\n").encode("gbk")

    dry = upload(admin, gbk, dry_run=True).json()
    assert dry["dry_run"] is True and dry["encoding"] == "gbk"
    assert dry["created"] == 4 and members_collection(config).count_documents({}) == 0

    report = upload(admin, gbk).json()
    assert report["created"] == 4 and report["rows"] == 6
    errors = {(e["row"], e["field"]) for e in report["errors"]}
    assert errors == {(3, "phone"), (3, "sector"), (5, "party"), (5, "committees")}
    assert all(e["message"] and e["column"] for e in report["errors"])
    assert {e["column"] for e in report["errors"] if e["row"] == 5} == {"党派", "专委会"}
    wait_until(lambda: all_settled(config))
    assert len(events.wait_for(4)) == 4

    # the same file again changes nothing and emits nothing
    again = upload(admin, gbk).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 4)
    # a later change is the next and only event on the exchange
    first = rows[0]
    member_id = admin.get("/api/v1/members", params={"name": first["name"]}).json()["items"]
    member_id = [m for m in member_id if m["employer"] == first["employer"]][0]["id"]
    assert admin.patch(f"/api/v1/members/{member_id}", json={"post": "新职务"}).status_code == 200
    wait_until(lambda: all_settled(config))
    received = events.wait_for(5)
    assert [e["type"] for e in received[4:]] == ["member.updated"] and len(received) == 5


def test_xlsx_export_and_reimport_round_trip(admin, config):
    upload(admin, demo.roster_csv(demo.members(25)))
    gone = admin.get("/api/v1/members?limit=1").json()["items"][0]["id"]
    ended = admin.post(f"/api/v1/members/{gone}/end", json={
        "status": "resigned", "reason": "工作调动", "ended_on": "2026-03-01"})
    assert ended.status_code == 200, ended.text
    resp = admin.get("/api/v1/members/export.xlsx")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(resp.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == [h for h, _, _ in roster.COLUMNS] and len(rows) == 26
    report = upload(admin, resp.content,
                    ctype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    ).json()
    assert report["encoding"] == "xlsx"
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 25)
    assert report["errors"] == []       # the member who resigned too (状态 辞去)
    status = [h for h, _, _ in roster.COLUMNS].index("状态")
    assert sorted(r[status] for r in rows[1:]).count("辞去") == 1
    # an ended member's row edited, or an active one marked as ended, is refused
    book = load_workbook(io.BytesIO(resp.content))
    sheet = book.active
    for row in sheet.iter_rows(min_row=2):
        if row[status].value == "辞去":
            row[roster.COLUMNS.index(("职务", "post", False))].value = "新职务"
            break
    buf = io.BytesIO()
    book.save(buf)
    edited = upload(admin, buf.getvalue(),
                    ctype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    ).json()
    assert [(e["column"], e["message"]) for e in edited["errors"]] == [
        ("状态", "已辞去委员的记录不能修改")]

    # a reviewer's export masks personal fields
    masked = Client(config, "reviewer").get("/api/v1/members/export.xlsx")
    sheet = load_workbook(io.BytesIO(masked.content)).active
    phones = [r[roster.COLUMNS.index(("手机", "phone", True))]
              for r in list(sheet.iter_rows(values_only=True))[1:]]
    assert phones and all("****" in p for p in phones)


def test_unreadable_files_are_refused_whole(admin, config):
    resp = upload(admin, "姓名,电话号码\n张三,1\n".encode())
    assert resp.status_code == 422
    assert "缺少列" in resp.json()["errors"]["file"][0]
    assert upload(admin, b"").status_code == 422
    assert upload(admin, b"PK\x03\x04broken", ctype="application/octet-stream").status_code == 422
    assert members_collection(config).count_documents({}) == 0
    assert Client(config, "reviewer").post("/api/v1/members/import",
                                           data=b"x").status_code == 403


def test_a_roster_as_offices_keep_it_in_excel(admin, config):
    """A 序号 column, real date cells and 2021/12/28 text, full party names
    and synonyms, 提案委员会 for 提案委, and an ID number Excel turned into a
    number (reported in words the office understands)."""
    import datetime
    from openpyxl import Workbook
    rows = demo.members(4, seed=77)
    numeric = next(i for i, m in enumerate(rows) if m["id_number"].isdigit())
    headers = ["序号", "姓名", "性别", "民族", "党派", "界别", "专委会", "政协职务", "届次",
               "手机", "身份证号", "任职日期"]
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    full = {"cdl": "中国民主同盟", "cpc": "中国共产党", "none": "无党派人士"}
    for i, m in enumerate(rows):
        sheet.append([i + 1, m["name"], "男性" if m["gender"] == "male" else "女性",
                      m["ethnicity"], full.get(m["party"], "中国民主同盟"), m["sector"],
                      "提案委员会、经济委员会", "委员", m["term"], m["phone"],
                      int(m["id_number"]) if i == numeric else m["id_number"],
                      datetime.datetime(2021, 12, 28) if i == 0 else "2021/12/28"])
    buf = io.BytesIO()
    book.save(buf)
    report = upload(admin, buf.getvalue(),
                    ctype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["created"] == 3, body
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(numeric + 2, "身份证号")]
    assert "文本" in body["errors"][0]["message"]
    created = admin.get("/api/v1/members?limit=10").json()["items"]
    one = admin.get(f"/api/v1/members/{created[0]['id']}").json()
    assert one["committees"] == ["提案委", "经济委"] and one["appointed_on"] == "2021-12-28"
    assert one["party"] in ("cdl", "cpc", "none") and one["gender"] in ("male", "female")


def test_roster_messages_name_the_sheets_labels(admin):
    rows = demo.members(1, seed=78)
    text = demo.roster_csv(rows).decode("utf-8").splitlines()
    cols = text[0].split(",")
    line = text[1].split(",")
    line[cols.index("党派")] = "某党"
    body = upload(admin, "\n".join([text[0], ",".join(line)]).encode()).json()
    message = next(e["message"] for e in body["errors"] if e["column"] == "党派")
    assert message.startswith("取值应为：中共、民革") and "cpc" not in message
