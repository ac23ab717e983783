import pytest

from services.common.problems import Conflict, Invalid
from services.members import domain, roster
from services.members.schemas import member_in

CODES = {"sectors": ["教育界", "经济界"], "committees": ["提案委", "文史委"],
         "terms": ["第九届", "第十届"]}


def member(**over):
    data = {"name": "王建国", "gender": "male", "ethnicity": "汉族", "party": "cdl",
            "sector": "教育界", "committees": ["提案委"], "role": "member", "term": "第十届",
            "phone": "13912345678", "id_number": "140428199003071235"}
    data.update(over)
    return data


@pytest.mark.parametrize("number,problem", [
    ("140428199003071235", None),
    ("14042819900307123x", "身份证号校验位不正确"),
    ("140428199002301231", "身份证号中的出生日期无效"),
    ("1404281990030712", "身份证号应为 18 位（末位可为 X）"),
])
def test_id_number_rules(number, problem):
    assert domain.id_number_problem(number) == problem


def test_check_digit_x():
    first17 = next(f"11010519491231{n:03d}" for n in range(1000)
                   if domain.id_check_digit(f"11010519491231{n:03d}") == "X")
    assert domain.id_number_problem(first17 + "X") is None
    assert domain.id_number_problem(first17 + "x") is None  # upper-cased


def test_mobile_and_masks():
    assert domain.mobile_ok("13912345678") and not domain.mobile_ok("12912345678")
    assert domain.mask_phone("13912345678") == "139****5678"
    assert domain.mask_id("140428199003071235") == "1404**********1235"


def test_person_key_is_keyed_and_stable():
    a = domain.person_key("140428199003071235", "k1")
    assert a == domain.person_key("140428199003071235", "k1")
    assert a != domain.person_key("140428199003071235", "k2")
    assert "199003071235" not in a


def test_code_errors_per_platform():
    errors = domain.code_errors(member(sector="体育界", committees=["提案委", "提案委"],
                                       term="第八届", birth_date="1990-01-01"), **CODES)
    assert set(errors) == {"sector", "committees", "term", "birth_date"}
    assert domain.code_errors(member(committees=[]), **CODES)["committees"] == [
        "每位委员至少属于一个专委会（全员入委）"]
    assert domain.code_errors(domain.normalise(member()), **CODES) == {}


def test_appoint_update_end():
    doc, payload = domain.appoint(member_in.load(member()), org="140428", person_secret="k")
    assert doc["status"] == "active" and doc["birth_date"] == "1990-03-07"
    for key in domain.PERSONAL_FIELDS:
        assert key not in payload
    doc["seq"] = 1
    fields, change = domain.update(doc, {"phone": "13800001111", "name": "王建国"})
    assert fields == {"phone": "13800001111"}
    assert change["changed"] == ["phone"] and "13800001111" not in str(change)
    assert domain.update(doc, {"name": "王建国"}) == ({}, None)
    with pytest.raises(Invalid):
        domain.update(doc, {"term": "第九届"})
    fields, event_type, payload = domain.end(doc, status="removed", reason="撤销", on="2024-01-01")
    assert event_type == "member.removed" and payload["member"]["status"] == "removed"
    removed = dict(doc, **fields)
    with pytest.raises(Conflict) as info:
        domain.update(removed, {"post": "x"})
    assert info.value.extra["current_state"] == "removed"
    _, event_type, _ = domain.end(doc, status="term_ended", reason="届满", on="2026-12-31")
    assert event_type == "member.term_ended"


def test_view_masks_unless_full():
    doc, _ = domain.appoint(member_in.load(member()), org="140428", person_secret="k")
    masked = domain.view(doc, full=False)
    assert masked["phone"] == "139****5678" and masked["birth_date"] is None
    assert domain.view(doc, full=True)["id_number"] == "140428199003071235"


def test_roster_labels_and_encodings():
    text = "姓名,性别,民族,党派,界别,专委会,政协职务,届次,手机,身份证号\n" \
           "王建国,男,汉族,民盟,教育界,提案委、文史委,常委,第十届,13912345678,140428199003071235\n"
    for encoding, expected in (("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("gbk", "gbk")):
        header, rows, detected = roster.read_table(text.encode(encoding))
        assert detected == expected
        (row_number, raw), = roster.records(header, rows)
        data = roster.to_input(raw)
        assert row_number == 2 and data["party"] == "cdl" and data["role"] == "standing"
        assert data["committees"] == ["提案委", "文史委"] and data["gender"] == "male"
    with pytest.raises(roster.RosterError, match="缺少列"):
        roster.records(["姓名"], [])


def test_a_zip_bomb_or_an_oversized_roster_is_refused_before_it_is_parsed():
    import io
    import zipfile
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b" " * (roster.MAX_UNPACKED_BYTES + 1))
    data = packed.getvalue()
    assert len(data) < 200_000          # small to send, huge to unpack
    with pytest.raises(roster.RosterError, match="解压后过大"):
        roster.read_table(data, "名册.xlsx")
    header = ",".join(h for h, _, _ in roster.COLUMNS)
    too_long = "\n".join([header] + ["张三,男"] * (roster.MAX_ROWS + 1)).encode()
    with pytest.raises(roster.RosterError, match="行"):
        roster.read_table(too_long, "名册.csv")
    too_wide = (header + "," * 100 + "x\n张三").encode()
    with pytest.raises(roster.RosterError, match="列"):
        roster.read_table(too_wide, "名册.csv")
    # a roster at the bound, with empty formatted rows and cells, still reads
    fine = "\n".join([header + ",,,"] + ["张三,男,,,"] * roster.MAX_ROWS + [",,,"] * 50)
    head, rows, _ = roster.read_table(fine.encode(), "名册.csv")
    assert len(rows) == roster.MAX_ROWS and head[0] == "姓名"
