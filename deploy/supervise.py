"""The supervisor of a local platform: restarts what dies, with backoff.

``zhzx up`` starts one supervisor per platform once every part is running
(``python -m deploy.supervise --platform county``, its own process group, PID
in ``.run/<platform>/supervisor.pid``). It watches each part — broker, Mongo
wire server, SMTP server, services — through its proven PID file every half
second. A part that exits is restarted after 1, 2, 4, 8, 16, then 30 s; the
delay starts again at 1 s once the part has stayed up for 60 s. Every exit
and restart is a JSON line in ``logs/supervisor.log``; the state of each part
(state, PID, since, restarts, last exit) is kept in ``supervisor.json`` for
``zhzx status``.

Operators act through small command files in ``control/`` (``zhzx stop``,
``zhzx start``, ``zhzx restart``): a part stopped on purpose stays stopped
until it is started again. ``zhzx down`` stops the supervisor first, so
nothing is restarted while the platform stops.
"""
import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid

from deploy import local
from services.common.observability import JsonFormatter

log = logging.getLogger("zhzx.supervisor")

BACKOFF = (1, 2, 4, 8, 16, 30)
STABLE_SECONDS = 60
POLL_SECONDS = 0.5


def paths(name):
    base = local.RUN / name
    return {"base": base, "pid": base / "supervisor.pid", "state": base / "supervisor.json",
            "control": base / "control", "log": base / "logs" / "supervisor.log"}


class Supervisor:
    def __init__(self, name):
        self.name = name
        self.paths = paths(name)
        self.parts = local.parts(name)
        now = time.time()
        self.state = {part: {"state": "running", "pid": None, "since": now, "restarts": 0,
                             "failures": 0, "last_exit": None, "next_start": None,
                             "wanted": True} for part in self.parts}
        self.active = True
        self._written = None

    # --- the loop ----------------------------------------------------------
    def run(self, max_seconds=None):
        self.paths["control"].mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + max_seconds if max_seconds else None
        log.info("supervising %s", ", ".join(self.parts))
        while self.active and (deadline is None or time.monotonic() < deadline):
            self.reap()
            self.commands()
            for part in self.parts:
                self.watch(part)
            self.write_state()
            time.sleep(POLL_SECONDS)
        log.info("supervisor stopped")
        self.paths["state"].unlink(missing_ok=True)

    def watch(self, name):
        part, st = self.parts[name], self.state[name]
        now = time.time()
        pid = part.pid()
        if pid:
            if st["pid"] != pid:  # started (by us, `up` or an operator)
                st.update(pid=pid, state="running", wanted=True, next_start=None,
                          since=now - (local.process_uptime(pid) or 0))
            if st["failures"] and now - st["since"] >= STABLE_SECONDS:
                st["failures"] = 0
            return
        if not st["wanted"]:
            st.update(state="stopped", pid=None)
            return
        if st["state"] == "running":  # it died
            st["failures"] += 1
            delay = BACKOFF[min(st["failures"], len(BACKOFF)) - 1]
            log.warning("%s (pid %s) exited after %.0f s; restarting in %s s", name, st["pid"],
                        now - st["since"], delay, extra={"outcome": "exited"})
            st.update(state="backoff", pid=None, last_exit=now, next_start=now + delay)
        elif st["state"] == "backoff" and now >= st["next_start"]:
            self.start(name, automatic=True)

    def start(self, name, automatic=False):
        part, st = self.parts[name], self.state[name]
        st["state"] = "starting"
        self.write_state()
        try:
            part.start()
        except Exception as exc:  # a port still taken, a broker not ready yet…
            log.warning("%s could not start: %s", name, exc, extra={"outcome": "failed"})
        pid = part.pid()
        now = time.time()
        if automatic:
            st["restarts"] += 1
        if pid:
            st.update(state="running", pid=pid, since=now, next_start=None)
            log.info("%s started (pid %s)%s", name, pid,
                     f", restart {st['restarts']}" if automatic else "",
                     extra={"outcome": "restarted" if automatic else "started"})
        else:
            st["failures"] += 1
            delay = BACKOFF[min(st["failures"], len(BACKOFF)) - 1]
            st.update(state="backoff", pid=None, next_start=now + delay)

    @staticmethod
    def reap():
        """Collect the exit status of parts this process restarted."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return

    # --- operator commands ---------------------------------------------------
    def commands(self):
        for path in sorted(self.paths["control"].glob("*.json")):
            try:
                command = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            path.unlink(missing_ok=True)
            reply = self.execute(command.get("cmd"), command.get("part"))
            path.with_suffix(".reply").write_text(json.dumps(reply, ensure_ascii=False))

    def execute(self, cmd, name):
        if cmd == "shutdown":
            self.active = False
            return {"ok": True}
        if name not in self.parts:
            shared = " (this platform runs its services in one process: `services`)" \
                if name in local.SERVICES and "services" in self.parts else ""
            return {"ok": False,
                    "error": f"unknown part {name!r}{shared}: {', '.join(self.parts)}"}
        part, st = self.parts[name], self.state[name]
        if cmd in ("stop", "restart"):
            st["wanted"] = False
            part.stop()
            st.update(state="stopped", pid=None)
            log.info("%s stopped by the operator", name, extra={"outcome": "stopped"})
        if cmd in ("start", "restart"):
            st.update(wanted=True, failures=0)
            if not part.pid():
                self.start(name)
        if cmd not in ("stop", "start", "restart"):
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        return {"ok": True, "state": st["state"], "pid": st["pid"]}

    def write_state(self):
        body = {"pid": os.getpid(), "platform": self.name,
                "parts": {k: {f: v for f, v in st.items() if f != "failures"}
                          for k, st in self.state.items()}}
        text = json.dumps(body, ensure_ascii=False)
        if text != self._written:
            tmp = self.paths["state"].with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.paths["state"])
            self._written = text


# --- used by `zhzx` ---------------------------------------------------------
def pid(name):
    return local.read_pid(paths(name)["pid"])


def start(name):
    """Start the platform's supervisor unless it runs: True if started now."""
    if pid(name):
        return False
    p = paths(name)
    p["log"].parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ZHZX_RUN_DIR=str(local.RUN))
    env["PYTHONPATH"] = str(local.ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with open(p["base"] / "supervisor.out", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deploy.supervise", "--platform", name],
                                env=env, cwd=local.ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    local.write_pid(p["pid"], proc.pid)
    local.wait_for(lambda: p["state"].exists() or proc.poll() is not None, 30,
                   "the supervisor to report")
    if proc.poll() is not None:
        raise local.LaunchError(f"the supervisor exited; see {p['base'] / 'supervisor.out'}")
    return True


def command(name, cmd, part=None, timeout=150):
    """Hand ``cmd`` to the running supervisor and wait for its reply."""
    if not pid(name):
        raise local.LaunchError(f"no supervisor runs for {name} (run `zhzx up`)")
    control = paths(name)["control"]
    control.mkdir(parents=True, exist_ok=True)
    ident = uuid.uuid4().hex
    request = control / f"{ident}.json"
    tmp = control / f"{ident}.tmp"
    tmp.write_text(json.dumps({"cmd": cmd, "part": part}))
    tmp.replace(request)
    reply = control / f"{ident}.reply"
    local.wait_for(lambda: reply.exists(), timeout, f"the supervisor to {cmd} {part or ''}")
    body = json.loads(reply.read_text())
    reply.unlink(missing_ok=True)
    return body


def stop(name, timeout=30):
    """Stop the supervisor (not the parts): True if one was running."""
    running = pid(name)
    if not running:
        paths(name)["pid"].unlink(missing_ok=True)
        return False
    try:
        command(name, "shutdown", timeout=timeout)
        local.wait_for(lambda: not local.pid_alive(running), timeout, "the supervisor to exit")
    except local.LaunchError:
        local.stop_pid(running)
    paths(name)["pid"].unlink(missing_ok=True)
    return True


def status(name):
    """Each part: state, PID, uptime, restarts and readiness, checked now."""
    state = {}
    try:
        state = json.loads(paths(name)["state"].read_text())
    except (OSError, ValueError):
        pass
    supervisor = pid(name)
    rows = []
    for part_name, part in local.parts(name).items():
        known = (state.get("parts") or {}).get(part_name, {}) if supervisor else {}
        part_pid = part.pid()
        uptime = local.process_uptime(part_pid) if part_pid else None
        rows.append({
            "part": part_name, "pid": part_pid,
            "state": "running" if part_pid else (known.get("state") or "stopped"),
            "uptime_seconds": round(uptime) if uptime is not None else None,
            "restarts": known.get("restarts", 0),
            "readiness": local.readiness(part) if part_pid else "-",
            "rss_bytes": local.process_rss(part_pid) if part_pid else None,
        })
    return {"platform": name, "supervisor": supervisor, "parts": rows,
            "rss_bytes": sum(r["rss_bytes"] or 0 for r in rows)}


def main(argv=None):
    parser = argparse.ArgumentParser(description="supervise a local platform")
    parser.add_argument("--platform", required=True)
    parser.add_argument("--max-seconds", type=float)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(open(paths(args.platform)["log"], "a", buffering=1))
    handler.setFormatter(JsonFormatter(service="supervisor"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    supervisor = Supervisor(args.platform)

    def terminate(signum, frame):
        supervisor.active = False
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    supervisor.run(args.max_seconds)


if __name__ == "__main__":
    main()
