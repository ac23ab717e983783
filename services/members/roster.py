"""Roster files: CSV (UTF-8 or GBK, detected) and XLSX in, XLSX out.

Pure translation between the spreadsheet committee offices keep and member
input dicts; validation is the same as the API's.
"""
import csv
import io
import re
import zipfile


from services.common.xlsx import workbook

from . import domain

COLUMNS = [  # (header, field, required)
    ("姓名", "name", True), ("性别", "gender", True), ("民族", "ethnicity", True),
    ("出生日期", "birth_date", False), ("党派", "party", True), ("界别", "sector", True),
    ("专委会", "committees", True), ("政协职务", "role", True), ("届次", "term", True),
    ("工作单位", "employer", False), ("职务", "post", False), ("手机", "phone", True),
    ("身份证号", "id_number", True), ("任职方式", "appointment", False),
    ("任职日期", "appointed_on", False), ("电子邮箱", "email", False),
    ("微信OpenID", "wechat_openid", False), ("状态", "status", False),
]
HEADER_TO_FIELD = {h: f for h, f, _ in COLUMNS}
FIELD_TO_HEADER = {f: h for h, f, _ in COLUMNS}
# What offices write in their sheets: the short labels, the full names and
# the common synonyms
_LABELS = {
    "gender": {v: k for k, v in domain.GENDERS.items()} | {"男性": "male", "女性": "female"},
    "party": {v: k for k, v in domain.PARTIES.items()} | {
        "中国共产党": "cpc", "中共党员": "cpc", "中国国民党革命委员会": "rcckmt",
        "中国民主同盟": "cdl", "中国民主建国会": "cndca", "中国民主促进会": "capd",
        "中国农工民主党": "pwdp", "农工民主党": "pwdp", "中国致公党": "zgd",
        "九三学社": "jsfs", "台湾民主自治同盟": "tdsgl", "无党派人士": "none", "群众": "none"},
    "role": {v: k for k, v in domain.ROLES.items()} | {
        "政协主席": "chair", "政协副主席": "vice_chair", "常务委员": "standing",
        "政协委员": "member"},
    "appointment": {v: k for k, v in domain.APPOINTMENTS.items()} | {"换届选举": "election",
                                                                     "增补委员": "by_election"},
    "status": {v: k for k, v in domain.STATUSES.items()},
}
_SPLIT = re.compile(r"[、,，;；/]+")
_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
DATE_FIELDS = ("birth_date", "appointed_on")
IGNORED_HEADERS = ("序号", "编号", "No.", "NO.")


class NumberCell(str):
    """A value that the spreadsheet kept as a number (what Excel does to an
    ID number typed into a General cell, losing its last digits)."""

XLSX_MAGIC = b"PK\x03\x04"


class RosterError(ValueError):
    """The file as a whole cannot be read (wrong format, missing columns)."""


# A city's roster is ~500 rows of ~20 columns, well under a megabyte unpacked;
# these bounds are far above any real roster and far below what hurts a service.
MAX_ROWS = 20_000
MAX_COLUMNS = 60
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_ZIP_ENTRIES = 200


def check_xlsx_size(data):
    """Refuse an XLSX whose unpacked size or entry count is out of bounds
    before parsing it (a zip bomb), from the zip directory alone."""
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError):
        raise RosterError("无法读取 XLSX 文件") from None
    if len(entries) > MAX_ZIP_ENTRIES or \
            sum(e.file_size for e in entries) > MAX_UNPACKED_BYTES:
        raise RosterError(f"XLSX 文件解压后过大（上限 {MAX_UNPACKED_BYTES // 1024 // 1024} MB），"
                          "请只保留名册工作表")


def bounded(rows):
    """The rows, refused past ``MAX_ROWS`` rows or ``MAX_COLUMNS`` columns."""
    out = []
    for row in rows:
        row = list(row)
        while row and (row[-1] is None or not str(row[-1]).strip()):
            row.pop()   # trailing empty cells of a formatted sheet
        if not row:
            continue    # empty rows (formatting down the sheet) are not rows
        if len(out) >= MAX_ROWS + 1:   # the header and MAX_ROWS members
            raise RosterError(f"名册超过 {MAX_ROWS} 行，请分批导入")
        if len(row) > MAX_COLUMNS:
            raise RosterError(f"名册超过 {MAX_COLUMNS} 列")
        out.append(row)
    return out


def decode_csv(data):
    """UTF-8 (with or without BOM) when it decodes, else GBK (as GB18030)."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030"), "gbk"
        except UnicodeDecodeError:
            raise RosterError("文件编码无法识别，请使用 UTF-8 或 GBK") from None


def read_table(data, filename=""):
    """(header, rows, encoding) from CSV or XLSX bytes."""
    if data[:4] == XLSX_MAGIC or filename.lower().endswith(".xlsx"):
        check_xlsx_size(data)
        try:
            from openpyxl import load_workbook   # on first use: 16 MB
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:
            raise RosterError("无法读取 XLSX 文件") from None
        try:
            sheet = book.worksheets[0]
            rows = [["" if c is None else _cell(c) for c in row]
                    for row in bounded(sheet.iter_rows(values_only=True))]
        finally:
            book.close()
        encoding = "xlsx"
    else:
        text, encoding = decode_csv(data)
        rows = bounded(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(str(c).strip() for c in r)] if rows else rows
    if not rows:
        raise RosterError("文件为空")
    return [str(h).strip() for h in rows[0]], rows[1:], encoding


def _cell(value):
    if hasattr(value, "date") and hasattr(value, "year"):   # a real date cell
        return value.date().isoformat() if hasattr(value, "hour") else value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return NumberCell(str(int(value)) if float(value).is_integer() else str(value))
    return str(value)


def records(header, rows):
    """(spreadsheet row number, raw field dict) for each data row."""
    unknown = [h for h in header if h and h not in HEADER_TO_FIELD and h not in IGNORED_HEADERS]
    missing = [h for h, _, req in COLUMNS if req and h not in header]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("缺少列：" + "、".join(missing))
        if unknown:
            parts.append("无法识别的列：" + "、".join(unknown))
        raise RosterError("；".join(parts))
    out = []
    for offset, row in enumerate(rows):
        raw = {}
        for header_name, value in zip(header, row):
            if header_name in HEADER_TO_FIELD:   # 序号 and blank headers are skipped
                raw[HEADER_TO_FIELD[header_name]] = value if isinstance(value, NumberCell) \
                    else str(value).strip()
        out.append((offset + 2, raw))
    return out


def to_input(raw):
    """Labels (男, 中共, 常委, full names and synonyms) → codes; dates as Excel
    writes them (2021/12/28, 2021.12.28, 2021年12月28日) → ISO; 提案委员会 →
    提案委; blanks of optional fields dropped."""
    data = {}
    for field_name, value in raw.items():
        value = str(value).strip()
        if value == "":
            continue
        if field_name in _LABELS:
            value = _LABELS[field_name].get(value, value)
        if field_name == "committees":
            value = [committee_name(c) for c in _SPLIT.split(value) if c.strip()]
        if field_name in DATE_FIELDS:
            match = _DATE.match(value)
            if match:
                value = "{}-{:02d}-{:02d}".format(*(int(g) for g in match.groups()))
        data[field_name] = value
    return data


def committee_name(text):
    """提案委员会 → 提案委: the short names the platform configures."""
    text = text.strip()
    return text[:-3] + "委" if text.endswith("委员会") else text


def cell_errors(raw):
    """Problems only the sheet shows: an ID number kept as a number."""
    if isinstance(raw.get("id_number"), NumberCell):
        return {"id_number": ["身份证号在表格中是数字格式，Excel 已改写其末几位：请把该列设为"
                              "“文本”格式后重新录入"]}
    return {}


def label_message(field_name):
    """The choices of a coded column in the sheet's own words."""
    table = {"gender": domain.GENDERS, "party": domain.PARTIES, "role": domain.ROLES,
             "appointment": domain.APPOINTMENTS, "status": domain.STATUSES}.get(field_name)
    return f"取值应为：{'、'.join(table.values())}" if table else None


def to_row(member, full):
    view = domain.view(member, full=full)
    row = []
    for _, field_name, _ in COLUMNS:
        value = view.get(field_name) if field_name in view else member.get(field_name)
        if field_name == "committees":
            value = "、".join(value or [])
        elif field_name == "gender":
            value = domain.GENDERS.get(value, value)
        elif field_name == "party":
            value = domain.PARTIES.get(value, value)
        elif field_name == "role":
            value = domain.ROLES.get(value, value)
        elif field_name == "appointment":
            value = domain.APPOINTMENTS.get(value, value)
        elif field_name == "status":
            value = domain.STATUSES.get(value, value)
        row.append("" if value is None else str(value))
    return row


def to_xlsx(members, full):
    return workbook([("委员名册", [h for h, _, _ in COLUMNS],
                      (to_row(m, full) for m in members))])
