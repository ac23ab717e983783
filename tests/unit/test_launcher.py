"""The local launcher's PID proofs and port shifts (pure, plus /proc)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import local
from tests.support import ROOT


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_recorded_pid_is_trusted_while_that_process_runs(tmp_path, sleeper):
    path = tmp_path / "x.pid"
    local.write_pid(path, sleeper.pid)
    assert local.read_pid(path) == sleeper.pid
    sleeper.kill()
    sleeper.wait()
    assert local.read_pid(path) is None


def test_a_reused_pid_is_not_trusted(tmp_path, sleeper):
    """The record names a process that started at another time: another
    process now has that PID, and it is neither reported nor signalled."""
    start, cmd = local.process_identity(sleeper.pid)
    path = tmp_path / "x.pid"
    path.write_text(json.dumps({"pid": sleeper.pid, "start": start - 1, "cmd": cmd}))
    assert local.read_pid(path) is None


def test_a_bare_pid_is_trusted_only_with_its_marker(tmp_path, sleeper):
    path = tmp_path / "x.pid"
    path.write_text(str(sleeper.pid))
    assert local.read_pid(path) is None
    assert local.read_pid(path, marker="rabbit") is None
    assert local.read_pid(path, marker="sleep 60") == sleeper.pid


def test_unreadable_pid_files_are_ignored(tmp_path):
    for text in ("", "abc", "[1]", '{"pid": "1"}', "true"):
        (tmp_path / "x.pid").write_text(text)
        assert local.read_pid(tmp_path / "x.pid") is None
    assert local.read_pid(tmp_path / "missing.pid") is None


@pytest.mark.parametrize("shift", [10000, 20000, 100, 1, -5000, 60000])
def test_shifts_onto_the_default_platforms_ports_are_refused(shift):
    with pytest.raises(local.LaunchError, match="ZHZX_PORT_SHIFT"):
        local.check_shift(shift)


@pytest.mark.parametrize("shift", [0, 3000, 31000])
def test_free_shifts_are_accepted(shift):
    assert local.check_shift(shift) == shift


def run_py(code, **env):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=dict(os.environ, **env))
    return result


def test_a_run_directory_remembers_its_shift(tmp_path):
    """`up` records the shift; later commands need ZHZX_RUN_DIR alone, and a
    different ZHZX_PORT_SHIFT for the same directory is refused."""
    env = {"ZHZX_RUN_DIR": str(tmp_path), "ZHZX_PORT_SHIFT": "3000"}
    assert run_py("from deploy import local; local.record_shift()", **env).returncode == 0
    assert json.loads((tmp_path / "ports.json").read_text()) == {"shift": 3000}
    alone = {k: v for k, v in os.environ.items() if k != "ZHZX_PORT_SHIFT"}
    result = subprocess.run(
        [sys.executable, "-c", "from deploy import local; print(local.platform_spec('city')"
         "['amqp'], local.service_url('county', 'members'))"],
        capture_output=True, text=True, cwd=ROOT, env=dict(alone, ZHZX_RUN_DIR=str(tmp_path)))
    assert result.stdout.split() == ["8673", "http://127.0.0.1:11001"], result.stderr
    other = run_py("from deploy import local; local.platform_spec('county')",
                   ZHZX_RUN_DIR=str(tmp_path), ZHZX_PORT_SHIFT="4000")
    assert other.returncode != 0 and "runs with port shift 3000" in other.stderr


def test_down_never_signals_a_process_it_did_not_start(tmp_path, sleeper):
    """Stale PID files whose numbers now belong to an unrelated process."""
    run = tmp_path / "run"
    for path in [run / "county" / "pids" / f"{s}.pid" for s in local.SERVICES] + [
            run / "county" / "mongo" / "mongo.pid", run / "county" / "rabbitmq" / "rabbitmq.pid"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(sleeper.pid))
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, ZHZX_RUN_DIR=str(run), ZHZX_PORT_SHIFT="3000")
    status = subprocess.run([str(bin_dir / "zhzx"), "status", "--json"], capture_output=True,
                            text=True, cwd=ROOT, env=env)
    assert status.returncode == 0, status.stderr
    assert all(row["state"] != "running" for row in json.loads(status.stdout)[0]["parts"])
    down = subprocess.run([str(bin_dir / "zhzx"), "down"], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    assert down.returncode == 0, down.stderr
    assert sleeper.poll() is None   # still running


def test_resident_memory_counts_a_process_and_those_under_it():
    import os
    import subprocess
    import sys
    from deploy.local import process_rss
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        own = process_rss(child.pid)
        assert own > 0
        assert process_rss(os.getpid()) > own   # the child is counted under its parent
    finally:
        child.communicate(b"")
    assert process_rss(child.pid) is None


def test_a_network_of_counties_gets_ports_of_its_own_and_the_city_knows_them(tmp_path,
                                                                             monkeypatch):
    from deploy import local
    monkeypatch.setattr(local, "RUN", tmp_path)
    monkeypatch.setattr(local, "PLATFORMS", {k: dict(v) for k, v in local.PLATFORMS.items()})
    names = local.define_network(3)
    assert names == ["county", "county-140403", "county-140404"]
    assert local.PLATFORMS["city"]["CHILD_ORGS"] == "140428=长子县,140403=潞州区,140404=上党区"
    ports = [spec[k] for spec in local.PLATFORMS.values() for k in local.PORT_KEYS
             if k in spec and k != "http_base"] + [
        spec["http_base"] + offset for spec in local.PLATFORMS.values()
        for offset in local.SERVICES.values()]
    assert len(ports) == len(set(ports))          # no two parts share a port
    assert local.check_shift(0) == 0
    # a later command in the same run directory sees the same network
    monkeypatch.setattr(local, "PLATFORMS", {k: v for k, v in local.PLATFORMS.items()
                                             if not k.startswith("county-")})
    local.load_network()
    assert local.PLATFORMS["county-140404"]["ORG_NAME"] == "上党区"
    with pytest.raises(local.LaunchError):
        local.define_network(13)


def test_co_hosted_services_each_read_their_own_settings():
    from deploy.cohost import service_env
    environ = {"ORG_CODE": "140428", "AMQP_URI": "amqp://shared", "PATH": "/bin",
               "MEMBERS__AMQP_URI": "amqp://svc-members", "MEMBERS__WEB_SERVER_ADDRESS": ":8001",
               "NOTIFY__AMQP_URI": "amqp://svc-notify"}
    services = ("members", "notify", "liaison")
    assert service_env("members", services, environ) == {
        "ORG_CODE": "140428", "PATH": "/bin", "AMQP_URI": "amqp://svc-members",
        "WEB_SERVER_ADDRESS": ":8001"}
    assert service_env("notify", services, environ)["AMQP_URI"] == "amqp://svc-notify"
    assert service_env("liaison", services, environ)["AMQP_URI"] == "amqp://shared"


def test_the_demo_loaded_again_on_a_later_day_adds_nothing(tmp_path, monkeypatch):
    """The demo's year of history runs up to the day it was first loaded: a
    later `make up` generates the same records (all already there), not one
    more day's 社情民意 (their number follows the days elapsed)."""
    from datetime import date, timedelta

    from deploy import demo
    monkeypatch.setattr(local, "RUN", tmp_path)
    before = date.today()
    first = demo.demo_day("county")
    assert first in (before, date.today())

    class NextDay(date):
        @classmethod
        def today(cls):
            return first + timedelta(days=1)
    monkeypatch.setattr(demo, "date", NextDay)
    again = demo.demo_day("county")
    assert again == first
    assert demo.demo_day("city") == NextDay.today()   # another platform, loaded first now
