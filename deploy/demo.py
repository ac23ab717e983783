"""Demo data for a local platform, loaded through the public HTTP API."""
import json
import urllib.request

from deploy import local
from services.common.auth import issue_token
from services.members import demo as members_demo


def _post(url, body, token, content_type):
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def load_demo(name="county", out=print):
    env = local.platform_env(name)
    token = issue_token(env["JWT_SECRET"], org=env["ORG_CODE"], roles=["admin"],
                        sub="demo-loader")
    csv_bytes = members_demo.roster_csv(members_demo.members(200))
    report = _post(local.service_url(name, "members", "/api/v1/members/import"),
                   csv_bytes, token, "text/csv")
    out(f"[{name}] demo roster: {report['created']} appointed, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {len(report['errors'])} rejected rows")
