"""The authorization matrix: every HTTP route of every service, and what each
role gets from it.

Columns (``ROLES``): the office (``admin``), the 提案委 reviewer, a handling
unit (the proposal's lead unit), a member (``own``: the proposer, author,
station member, invitee; ``other``: a member of nothing here), station staff
(``own``: the station of the items; ``other``: another station), a leader,
a citizen, an admin token of another platform, and no token at all.

Cells (``OUTCOMES``): ``ok`` — past authorization (2xx, or a 4xx about the
input or the state: 400, 409, 415, 422); ``403`` — refused; ``404`` — not
visible to that role; ``401`` — no valid token.

``tests/service/test_authorization.py`` runs every row against the running
services, and fails when a route exists that is not listed here. The README's
role table is generated from this one (``python -m tests.authz``; ``--check``
in ``make check``).
"""
import sys
from pathlib import Path

ROLES = ("admin", "reviewer", "unit", "member_own", "member_other", "station_own",
         "station_other", "leader", "citizen", "foreign", "anonymous")
OUTCOMES = {"ok", "403", "404", "401"}

# path parameters other than the usual (``{member_id}`` is the own member):
PARAMS = {
    # unassigning the station's spare member leaves the own member in place
    "liaison DELETE /api/v1/stations/{station_id}/members/{member_id}":
        {"member_id": "spare_member"},
    # the adapter's deliveries (none at a platform without a province endpoint)
    "provincial GET /api/v1/deliveries/{delivery_id}": {"delivery_id": "opinion:OP-none"},
    "provincial POST /api/v1/deliveries/{delivery_id}/retry": {"delivery_id": "opinion:OP-none"},
}


def example(schema, components):
    """A body that passes ``schema`` (the OpenAPI document's), so that a role
    is judged on its rights, not on a 422 for a missing field. Ids in it name
    nothing: whatever the domain says about them comes after authorization."""
    if "$ref" in schema:
        return example(components[schema["$ref"].split("/")[-1]], components)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return example(schema[key][0], components)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    enum = [v for v in schema.get("enum", []) if v is not None]
    if enum:
        return enum[0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example(props[k], components) for k in schema.get("required", [])
                if k in props}
    if kind == "array":
        return [example(schema.get("items", {}), components)] * schema.get("minItems", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    today = __import__("datetime").date.today().isoformat()
    if fmt == "date":
        return today
    if fmt == "date-time":
        return f"{today}T09:00"
    return "测" * max(2, schema.get("minLength", 0))


def outcome(status):
    if status in (401, 403, 404):
        return str(status)
    return "ok"


def run_order(routes):
    """Reads first, then changes, removals last: the objects stay in place
    for the rows after."""
    rank = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    return sorted(routes, key=lambda r: (rank[r.split(" ", 2)[1]], r))


def call_order():
    """Staff last in each row, so that an action they may take does not
    change what the other roles are judged on."""
    return [r for r in ROLES if r not in ("reviewer", "admin")] + ["reviewer", "admin"]


TABLE = {
    'liaison DELETE /api/v1/stations/{station_id}/members/{member_id}':               'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison GET /api/v1/consultations':                                              'ok ok 403 ok ok ok ok 403 403 403 401',
    'liaison GET /api/v1/consultations/{consultation_id}':                            'ok ok 404 ok 404 ok 404 404 404 403 401',
    'liaison GET /api/v1/ledger':                                                     'ok ok 403 403 403 403 403 403 403 403 401',
    'liaison GET /api/v1/ledger.xlsx':                                                'ok ok 403 403 403 403 403 403 403 403 401',
    'liaison GET /api/v1/liaison/statistics':                                         'ok ok 403 403 403 403 403 403 403 403 401',
    'liaison GET /api/v1/liaison/statistics/counties':                                'ok ok 403 403 403 403 403 403 403 403 401',
    'liaison GET /api/v1/members/{member_id}/stations':                               'ok ok 403 ok 403 403 403 403 403 403 401',
    'liaison GET /api/v1/opinions':                                                   'ok ok 403 ok ok ok ok 403 403 403 401',
    'liaison GET /api/v1/opinions/{opinion_id}':                                      'ok ok 404 ok 404 ok 404 404 404 403 401',
    'liaison GET /api/v1/places':                                                     'ok ok ok ok ok ok ok ok ok 403 401',
    'liaison GET /api/v1/requests':                                                   'ok ok 403 ok ok ok ok 403 ok 403 401',
    'liaison GET /api/v1/requests/{request_id}':                                      'ok ok 404 ok 404 ok 404 404 404 403 401',
    'liaison GET /api/v1/requests/{request_id}/suggestions':                          'ok 403 404 403 404 ok 404 404 404 403 401',
    'liaison GET /api/v1/stations':                                                   'ok ok ok ok ok ok ok ok ok 403 401',
    'liaison GET /api/v1/stations/{station_id}':                                      'ok ok ok ok ok ok ok ok ok 403 401',
    'liaison GET /api/v1/tasks':                                                      'ok ok 403 403 403 403 403 403 403 403 401',
    'liaison GET /api/v1/tasks/{task_id}':                                            '404 404 403 403 403 403 403 403 403 403 401',
    'liaison GET /docs':                                                              'ok ok ok ok ok ok ok ok ok ok ok',
    'liaison GET /docs/static/{name}':                                                'ok ok ok ok ok ok ok ok ok ok ok',
    'liaison GET /healthz':                                                           'ok ok ok ok ok ok ok ok ok ok ok',
    'liaison GET /metrics':                                                           '404 404 404 404 404 404 404 404 404 404 404',
    'liaison GET /openapi.json':                                                      'ok ok ok ok ok ok ok ok ok ok ok',
    'liaison GET /readyz':                                                            'ok ok ok ok ok ok ok ok ok ok ok',
    'liaison PATCH /api/v1/stations/{station_id}':                                    'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison POST /api/v1/consultations':                                             'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison POST /api/v1/consultations/{consultation_id}/actions/add_followup':      'ok 403 404 403 404 ok 404 404 404 403 401',
    'liaison POST /api/v1/consultations/{consultation_id}/actions/advance':           'ok 403 404 403 404 ok 404 404 404 403 401',
    'liaison POST /api/v1/consultations/{consultation_id}/actions/complete_followup': 'ok 403 404 403 404 ok 404 404 404 403 401',
    'liaison POST /api/v1/liaison/import':                                            'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison POST /api/v1/opinions':                                                  'ok 403 403 ok ok 403 403 403 403 403 401',
    'liaison POST /api/v1/opinions/{opinion_id}/actions/accept':                      'ok 403 404 403 404 403 404 404 404 403 401',
    'liaison POST /api/v1/opinions/{opinion_id}/actions/adopt':                       'ok 403 404 403 404 403 404 404 404 403 401',
    'liaison POST /api/v1/opinions/{opinion_id}/actions/edit':                        'ok 403 404 403 404 403 404 404 404 403 401',
    'liaison POST /api/v1/opinions/{opinion_id}/actions/instruct':                    'ok 403 404 403 404 403 404 404 404 403 401',
    'liaison POST /api/v1/opinions/{opinion_id}/actions/issue':                       'ok 403 404 403 404 403 404 404 404 403 401',
    'liaison POST /api/v1/opinions/{opinion_id}/actions/reject':                      'ok 403 404 403 404 403 404 404 404 403 401',
    'liaison POST /api/v1/opinions/{opinion_id}/actions/report':                      'ok 403 404 403 404 403 404 404 404 403 401',
    'liaison POST /api/v1/requests':                                                  'ok ok ok ok ok ok ok ok ok 403 401',
    'liaison POST /api/v1/requests/scan':                                             'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison POST /api/v1/requests/{request_id}/actions/accept':                      '403 403 404 ok 404 403 404 404 404 403 401',
    'liaison POST /api/v1/requests/{request_id}/actions/close':                       'ok 403 404 ok 404 ok 404 404 404 403 401',
    'liaison POST /api/v1/requests/{request_id}/actions/decline':                     '403 403 404 ok 404 403 404 404 404 403 401',
    'liaison POST /api/v1/requests/{request_id}/actions/dispatch':                    'ok 403 404 403 404 ok 404 404 404 403 401',
    'liaison POST /api/v1/requests/{request_id}/actions/escalate':                    'ok 403 404 ok 404 ok 404 404 404 403 401',
    'liaison POST /api/v1/requests/{request_id}/actions/rate':                        'ok 403 404 403 404 ok 404 404 404 403 401',
    'liaison POST /api/v1/stations':                                                  'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison POST /api/v1/stations/{station_id}/activities':                          'ok 403 403 403 403 ok 403 403 403 403 401',
    'liaison POST /api/v1/stations/{station_id}/members':                             'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison POST /api/v1/stations/{station_id}/reception-days':                      'ok 403 403 403 403 ok 403 403 403 403 401',
    'liaison POST /api/v1/tasks':                                                     'ok 403 403 403 403 403 403 403 403 403 401',
    'liaison POST /api/v1/tasks/{task_id}/actions/accept':                            '404 404 404 404 404 404 404 404 404 403 401',
    'liaison POST /api/v1/tasks/{task_id}/actions/report':                            '404 404 404 404 404 404 404 404 404 403 401',
    'members GET /api/v1/meetings':                                                   'ok ok 403 ok ok 403 403 403 403 403 401',
    'members GET /api/v1/meetings/absences':                                          'ok ok 403 403 403 403 403 403 403 403 401',
    'members GET /api/v1/meetings/{meeting_id}':                                      'ok ok 404 ok 404 404 404 404 404 403 401',
    'members GET /api/v1/members':                                                    'ok ok 403 403 403 403 403 403 403 403 401',
    'members GET /api/v1/members/export.xlsx':                                        'ok ok 403 403 403 403 403 403 403 403 401',
    'members GET /api/v1/members/rollup':                                             'ok ok 403 403 403 403 403 403 403 403 401',
    'members GET /api/v1/members/{member_id}':                                        'ok ok 403 ok 403 403 403 403 403 403 401',
    'members GET /api/v1/persons/{person_id}/memberships':                            'ok ok 403 403 403 403 403 403 403 403 401',
    'members GET /api/v1/records/report':                                             'ok ok 403 403 403 403 403 403 403 403 401',
    'members GET /api/v1/records/report.xlsx':                                        'ok ok 403 403 403 403 403 403 403 403 401',
    'members GET /api/v1/records/{member_id}':                                        'ok ok 403 ok 403 403 403 403 403 403 401',
    'members GET /docs':                                                              'ok ok ok ok ok ok ok ok ok ok ok',
    'members GET /docs/static/{name}':                                                'ok ok ok ok ok ok ok ok ok ok ok',
    'members GET /healthz':                                                           'ok ok ok ok ok ok ok ok ok ok ok',
    'members GET /metrics':                                                           '404 404 404 404 404 404 404 404 404 404 404',
    'members GET /openapi.json':                                                      'ok ok ok ok ok ok ok ok ok ok ok',
    'members GET /readyz':                                                            'ok ok ok ok ok ok ok ok ok ok ok',
    'members PATCH /api/v1/members/{member_id}':                                      'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings':                                                  'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings/scan':                                             'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings/{meeting_id}/checkin':                             'ok 403 403 ok ok 403 403 403 403 403 401',
    'members POST /api/v1/meetings/{meeting_id}/close':                               'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings/{meeting_id}/codes':                               'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings/{meeting_id}/leave':                               '403 403 403 ok 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings/{meeting_id}/leave/{member_id}':                   'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings/{meeting_id}/reopen':                              'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/meetings/{meeting_id}/signup':                              '403 403 403 ok 403 403 403 403 403 403 401',
    'members POST /api/v1/members':                                                   'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/members/import':                                            'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/members/{member_id}/end':                                   'ok 403 403 403 403 403 403 403 403 403 401',
    'members POST /api/v1/records/rebuild':                                           'ok 403 403 403 403 403 403 403 403 403 401',
    'notify GET /api/v1/deliveries':                                                  'ok ok 403 403 403 403 403 403 403 403 401',
    'notify GET /api/v1/inbox':                                                       'ok ok ok ok ok ok ok ok ok 403 401',
    'notify GET /api/v1/inbox/unread-count':                                          'ok ok ok ok ok ok ok ok ok 403 401',
    'notify GET /api/v1/notify/rules':                                                'ok ok 403 403 403 403 403 403 403 403 401',
    'notify GET /api/v1/preferences/{recipient}':                                     'ok 403 403 ok 403 403 403 403 403 403 401',
    'notify GET /docs':                                                               'ok ok ok ok ok ok ok ok ok ok ok',
    'notify GET /docs/static/{name}':                                                 'ok ok ok ok ok ok ok ok ok ok ok',
    'notify GET /healthz':                                                            'ok ok ok ok ok ok ok ok ok ok ok',
    'notify GET /metrics':                                                            '404 404 404 404 404 404 404 404 404 404 404',
    'notify GET /openapi.json':                                                       'ok ok ok ok ok ok ok ok ok ok ok',
    'notify GET /readyz':                                                             'ok ok ok ok ok ok ok ok ok ok ok',
    'notify POST /api/v1/deliveries/{delivery_id}/retry':                             'ok 403 403 403 403 403 403 403 403 403 401',
    'notify POST /api/v1/inbox/read-all':                                             'ok ok ok ok ok ok ok ok ok 403 401',
    'notify POST /api/v1/inbox/{note_id}/read':                                       'ok 403 403 ok 403 403 403 403 403 403 401',
    'notify POST /api/v1/notify/dispatch':                                            'ok 403 403 403 403 403 403 403 403 403 401',
    'notify PUT /api/v1/preferences/{recipient}':                                     'ok 403 403 ok 403 403 403 403 403 403 401',
    'proposals GET /api/v1/proposals':                                                'ok ok ok ok ok 403 403 403 403 403 401',
    'proposals GET /api/v1/proposals/export.xlsx':                                    'ok ok 403 403 403 403 403 403 403 403 401',
    'proposals GET /api/v1/proposals/statistics':                                     'ok ok 403 403 403 403 403 403 403 403 401',
    'proposals GET /api/v1/proposals/statistics.xlsx':                                'ok ok 403 403 403 403 403 403 403 403 401',
    'proposals GET /api/v1/proposals/statistics/counties':                            'ok ok 403 403 403 403 403 403 403 403 401',
    'proposals GET /api/v1/proposals/{proposal_id}':                                  'ok ok ok ok 404 404 404 404 404 403 401',
    'proposals GET /api/v1/proposals/{proposal_id}/routing':                          'ok ok 403 403 403 403 403 403 403 403 401',
    'proposals GET /api/v1/proposals/{proposal_id}/similar':                          'ok ok 403 403 403 403 403 403 403 403 401',
    'proposals GET /api/v1/units':                                                    'ok ok ok ok ok ok ok ok ok 403 401',
    'proposals GET /api/v1/units/{unit_id}':                                          'ok ok ok ok ok ok ok ok ok 403 401',
    'proposals GET /docs':                                                            'ok ok ok ok ok ok ok ok ok ok ok',
    'proposals GET /docs/static/{name}':                                              'ok ok ok ok ok ok ok ok ok ok ok',
    'proposals GET /healthz':                                                         'ok ok ok ok ok ok ok ok ok ok ok',
    'proposals GET /metrics':                                                         '404 404 404 404 404 404 404 404 404 404 404',
    'proposals GET /openapi.json':                                                    'ok ok ok ok ok ok ok ok ok ok ok',
    'proposals GET /readyz':                                                          'ok ok ok ok ok ok ok ok ok ok ok',
    'proposals PATCH /api/v1/proposals/{proposal_id}':                                'ok 403 403 ok 404 404 404 404 404 403 401',
    'proposals PATCH /api/v1/units/{unit_id}':                                        'ok 403 403 403 403 403 403 403 403 403 401',
    'proposals POST /api/v1/proposals':                                               'ok 403 403 ok ok 403 403 403 403 403 401',
    'proposals POST /api/v1/proposals/import':                                        'ok 403 403 403 403 403 403 403 403 403 401',
    'proposals POST /api/v1/proposals/scan':                                          'ok 403 403 403 403 403 403 403 403 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/answer':                  '403 403 ok 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/approve_extension':       'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/assign':                  'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/classify':                'ok ok 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/close':                   'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/close_cosigning':         'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/co_opinion':              '403 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/confirm_cosign':          '403 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/contact':                 '403 403 ok 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/decide':                  'ok ok 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/decline_cosign':          '403 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/evaluate':                'ok 403 403 ok 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/mark_excellent':          'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/mark_key':                'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/object':                  '403 403 ok 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/propose':                 'ok ok 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/reassign':                'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/rehandle':                'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/release':                 'ok ok 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/request_extension':       '403 403 ok 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/resubmit':                'ok 403 403 ok 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/send_back':               'ok ok 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/start':                   '403 403 ok 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/submit':                  'ok 403 403 ok 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/supervise':               'ok 403 403 403 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/update_draft':            'ok 403 403 ok 404 404 404 404 404 403 401',
    'proposals POST /api/v1/proposals/{proposal_id}/actions/withdraw':                'ok 403 403 ok 404 404 404 404 404 403 401',
    'proposals POST /api/v1/units':                                                   'ok 403 403 403 403 403 403 403 403 403 401',
    'provincial GET /api/v1/deliveries':                                              'ok 403 403 403 403 403 403 403 403 403 401',
    'provincial GET /api/v1/deliveries/{delivery_id}':                                '404 403 403 403 403 403 403 403 403 403 401',
    'provincial GET /api/v1/province/health':                                         'ok 403 403 403 403 403 403 403 403 403 401',
    'provincial GET /docs':                                                           'ok ok ok ok ok ok ok ok ok ok ok',
    'provincial GET /docs/static/{name}':                                             'ok ok ok ok ok ok ok ok ok ok ok',
    'provincial GET /healthz':                                                        'ok ok ok ok ok ok ok ok ok ok ok',
    'provincial GET /metrics':                                                        '404 404 404 404 404 404 404 404 404 404 404',
    'provincial GET /openapi.json':                                                   'ok ok ok ok ok ok ok ok ok ok ok',
    'provincial GET /readyz':                                                         'ok ok ok ok ok ok ok ok ok ok ok',
    'provincial POST /api/v1/deliveries/{delivery_id}/retry':                         '404 403 403 403 403 403 403 403 403 403 401',
    'provincial POST /api/v1/province/callbacks':                                     '401 401 401 401 401 401 401 401 401 401 401',
    'provincial POST /api/v1/province/figures'  :                                     'ok 403 403 403 403 403 403 403 403 403 401',
    'provincial POST /api/v1/province/reconcile':                                     'ok 403 403 403 403 403 403 403 403 403 401',
}

# --- the README's role table -------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- authorization table: python -m tests.authz -->", "<!-- end -->"
LABELS = {"admin": "office", "reviewer": "reviewer", "unit": "unit", "member_own": "member",
          "member_other": "member (other)", "station_own": "station",
          "station_other": "station (other)", "leader": "leader", "citizen": "citizen",
          "foreign": "other platform", "anonymous": "no token"}
MARK = {"ok": "✓", "403": "403", "404": "404", "401": "401"}


def markdown():
    lines = ["| service | route | " + " | ".join(LABELS[r] for r in ROLES) + " |",
             "|---|---|" + "---|" * len(ROLES)]
    for route, row in TABLE.items():
        service, method, path = route.split(" ", 2)
        lines.append(f"| {service} | `{method} {path}` | "
                     + " | ".join(MARK[c] for c in row.split()) + " |")
    return "\n".join(lines)


def readme_with_table(text):
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown()}\n{END}{tail}"


def render(observed):
    """The ``TABLE`` literal for ``observed`` rows, aligned."""
    width = max(len(r) for r in observed) + 3
    return "TABLE = {\n" + "".join(f"    {repr(route) + ':':<{width}} {row!r},\n"
                                   for route, row in sorted(observed.items())) + "}\n"


def main(argv):
    text = README.read_text()
    wanted = readme_with_table(text)
    if "--check" in argv:
        if wanted != text:
            print("README.md's authorization table differs from tests/authz.py: "
                  "run python -m tests.authz")
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
