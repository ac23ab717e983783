"""Spreadsheet exports: sheets of rows to XLSX bytes, and the HTTP response."""
import io
from urllib.parse import quote

from openpyxl import Workbook
from werkzeug.wrappers import Response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(sheets):
    """``sheets`` is ``[(title, header, rows)]``; rows may be any iterable."""
    book = Workbook(write_only=True)
    for title, header, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(header))
        for row in rows:
            sheet.append(list(row))
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def xlsx_response(body, filename):
    return Response(body, mimetype=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})
