"""The members service as operators start it: `nameko run ... --config`."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from deploy.local import http_status, stop_pid
from deploy.demo_data import members as demo
from tests.support import ROOT, wait_until

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture
def members_process(config, tmp_path):
    env = dict(os.environ)
    env.update({"ORG_CODE": "140428", "AMQP_URI": config["AMQP_URI"],
                "MONGO_URI": config["MONGO_URI"], "MONGO_DB_PREFIX": config["MONGO_DB_PREFIX"],
                "WEB_SERVER_ADDRESS": config["WEB_SERVER_ADDRESS"],
                "JWT_SECRET": config["JWT_SECRET"], "PERSON_KEY_SECRET": "e2e-person-key",
                "OUTBOX_POLL_SECONDS": "0.5"})
    log = open(tmp_path / "members.log", "wb")
    proc = subprocess.Popen([str(BIN / "nameko"), "run", "services.members.service",
                             "--config", str(ROOT / "deploy" / "config" / "platform.yaml")],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    try:
        wait_until(lambda: proc.poll() is not None or http_status(base + "/readyz") == 200,
                   timeout=60, what="members /readyz")
        assert proc.poll() is None, (tmp_path / "members.log").read_text()
        yield base, env, tmp_path / "members.log"
    finally:
        stop_pid(proc.pid)


def test_run_import_and_publish_with_json_logs(members_process, probe):
    base, env, log_path = members_process
    events = probe("members.events")
    token = subprocess.run(
        [str(BIN / "zhzx"), "token", "--role", "admin", "--config",
         str(ROOT / "deploy" / "config" / "platform.yaml")],
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    rows = demo.members(200)
    resp = requests.post(f"{base}/api/v1/members/import", data=demo.roster_csv(rows),
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "text/csv",
                                  "X-Trace-Id": "e2e-import"}, timeout=120)
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 200
    received = events.wait_for(200, timeout=60)
    assert {e["type"] for e in received} == {"member.appointed"}
    assert len({e["aggregate_id"] for e in received}) == 200
    assert all(e["trace_id"] == "e2e-import" for e in received)
    log = log_path.read_text(encoding="utf-8")
    for row in rows[:20]:
        assert row["phone"] not in log and row["id_number"] not in log
    import json
    json_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert json_lines, "service logs are JSON lines"
