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


def operator_env(config):
    env = {k: v for k, v in os.environ.items()
           if k not in ("JWT_SECRET", "PERSON_KEY_SECRET", "LINK_SIGNING_KEY")}
    env.update({"ORG_CODE": "140428", "AMQP_URI": config["AMQP_URI"],
                "MONGO_URI": config["MONGO_URI"], "MONGO_DB_PREFIX": config["MONGO_DB_PREFIX"],
                "WEB_SERVER_ADDRESS": config["WEB_SERVER_ADDRESS"],
                "JWT_SECRET": config["JWT_SECRET"],
                "PERSON_KEY_SECRET": config["PERSON_KEY_SECRET"],
                "LINK_SIGNING_KEY": config["LINK_SIGNING_KEY"],
                "OUTBOX_POLL_SECONDS": "0.5"})
    return env


def nameko_run(env, log):
    return subprocess.Popen([str(BIN / "nameko"), "run", "services.members.service",
                             "--config", str(ROOT / "deploy" / "config" / "platform.yaml")],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.mark.parametrize("name, value, says", [
    ("JWT_SECRET", None, "JWT_SECRET is not set"),
    ("JWT_SECRET", "dev-only-jwt-secret-change-me-0000000", "published development value"),
    ("PERSON_KEY_SECRET", "too-short", "shorter than 32 bytes"),
    ("LINK_SIGNING_KEY", "x" * 40, "base64 Ed25519 private key"),
])
def test_a_service_without_a_usable_secret_refuses_to_start(config, tmp_path, name, value,
                                                            says):
    env = operator_env(config)
    if value is None:
        del env[name]
    else:
        env[name] = value
    with open(tmp_path / "members.log", "wb") as log:
        proc = nameko_run(env, log)
        try:
            assert proc.wait(timeout=120) != 0
        finally:
            stop_pid(proc.pid)
    text = (tmp_path / "members.log").read_text(encoding="utf-8")
    assert "refusing to start" in text and says in text
    assert http_status(f"http://{config['WEB_SERVER_ADDRESS']}/healthz") is None


@pytest.fixture
def members_process(config, tmp_path):
    env = operator_env(config)
    log = open(tmp_path / "members.log", "wb")
    proc = nameko_run(env, log)
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
