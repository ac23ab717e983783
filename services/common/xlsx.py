"""Spreadsheet exports: sheets of rows to XLSX bytes, and the HTTP response.

openpyxl is imported on first use (16 MB a process pays only once someone
exports a sheet)."""
import io
import re
from urllib.parse import quote

from werkzeug.wrappers import Response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def sheet_title(title):
    """A title Excel accepts: none of ``[]:*?/\\``, at most 31 characters."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    return re.sub(r"[\[\]:*?/\\]", "_", ILLEGAL_CHARACTERS_RE.sub("", str(title)))[:31] or "Sheet"


def _cell(sheet, value):
    """Text as text: control characters dropped, and a leading ``=`` never
    read as a formula (what citizens and staff typed is shown, not run)."""
    if not isinstance(value, str):
        return value
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"
    return cell


def workbook(sheets):
    """``sheets`` is ``[(title, header, rows)]``; rows may be any iterable."""
    from openpyxl import Workbook
    book = Workbook(write_only=True)
    for title, header, rows in sheets:
        sheet = book.create_sheet(sheet_title(title))
        sheet.append([_cell(sheet, v) for v in header])
        for row in rows:
            sheet.append([_cell(sheet, v) for v in row])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def xlsx_response(body, filename):
    return Response(body, mimetype=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})
