"""Running platforms on this machine without containers.

Starts RabbitMQ nodes (Debian's rabbitmq-server, each with its own node name,
ports, cluster name and data directory on 127.0.0.1), the embedded MongoDB
wire-protocol server (nx-27017, in its own virtualenv) and the services, and
records every PID so that ``down`` stops exactly what ``up`` started. The test
fixtures use the same classes with their own ports and directories.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ZHZX_RUN_DIR and ZHZX_PORT_SHIFT let a second copy (an end-to-end test) run
# beside the usual one without touching it.
RUN = Path(os.environ.get("ZHZX_RUN_DIR") or ROOT / ".run")
PORT_SHIFT = int(os.environ.get("ZHZX_PORT_SHIFT") or 0)
PORT_KEYS = ("http_base", "amqp", "mgmt", "prom", "dist", "mongo", "smtp")
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
MONGO_VENV = ROOT / ".venv-mongo"
NX_VERSION = "0.8.1"
PLUGINS = ["rabbitmq_management", "rabbitmq_federation",
           "rabbitmq_federation_management", "rabbitmq_prometheus"]
SERVICES = {"members": 1, "proposals": 2, "liaison": 3, "notify": 4}  # service → port offset (8000 + offset)


class LaunchError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_pid(path):
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def wait_for(condition, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise LaunchError(f"timed out after {timeout}s waiting for {what}")


def stop_pid(pid, timeout=20):
    """SIGTERM the process group, then SIGKILL if it lingers."""
    if not pid or not pid_alive(pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if not pid_alive(pid):
            return


class Broker:
    """One RabbitMQ node with its own name, ports and data directory."""

    def __init__(self, base_dir, *, node, amqp_port, mgmt_port, prom_port, dist_port,
                 cluster_name):
        self.dir = Path(base_dir)
        self.node = node
        self.amqp_port, self.mgmt_port = amqp_port, mgmt_port
        self.prom_port, self.dist_port = prom_port, dist_port
        self.cluster_name = cluster_name
        self.pid_file = self.dir / "rabbitmq.pid"

    @property
    def amqp_uri(self):
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def mgmt_url(self):
        return f"http://127.0.0.1:{self.mgmt_port}"

    def env(self):
        env = dict(os.environ)
        env.update({
            "HOME": str(self.dir),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        return env

    def write_config(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text("\n".join([
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}",
            f"management.tcp.port = {self.mgmt_port}",
            "management.tcp.ip = 127.0.0.1",
            f"prometheus.tcp.port = {self.prom_port}",
            "prometheus.tcp.ip = 127.0.0.1",
            f"cluster_name = {self.cluster_name}",
            "loopback_users = none",
            "log.console = false",
            "log.file.level = warning",
            "",
        ]))
        (self.dir / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")

    def running(self):
        pid = read_pid(self.pid_file)
        return bool(pid and pid_alive(pid))

    def ctl(self, *args, timeout=60, check=True):
        result = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
                                env=self.env(), capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise LaunchError(f"rabbitmqctl {' '.join(args)} failed: "
                              f"{result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def start(self, timeout=120):
        if self.running():
            return False
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise LaunchError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        for port in (self.amqp_port, self.mgmt_port, self.prom_port, self.dist_port):
            if port_open(port):
                raise LaunchError(f"port {port} is already in use; cannot start {self.node}")
        self.write_config()
        log = open(self.dir / "server.out", "ab")
        subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env(),
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, cwd=self.dir)
        wait_for(lambda: self.pid_file.exists(), 30, f"{self.node} to write its pid file")
        self.ctl("wait", "--timeout", str(timeout), str(self.pid_file), timeout=timeout + 10)
        wait_for(lambda: port_open(self.amqp_port), 30, f"{self.node} AMQP port")
        return True

    def stop_app(self):
        self.ctl("stop_app")

    def start_app(self):
        self.ctl("start_app")
        wait_for(lambda: port_open(self.amqp_port), 30, f"{self.node} AMQP port")

    def stop(self):
        pid = read_pid(self.pid_file)
        if pid and pid_alive(pid):
            try:
                self.ctl("shutdown", timeout=60, check=False)
            except subprocess.TimeoutExpired:
                pass
            stop_pid(pid)
        self.pid_file.unlink(missing_ok=True)


class LocalServer:
    """A server process of the platform's own, recorded by PID."""
    what = "server"

    def __init__(self, data_dir, port, pid_name):
        self.dir = Path(data_dir)
        self.port = port
        self.pid_file = self.dir / pid_name

    def running(self):
        pid = read_pid(self.pid_file)
        return bool(pid and pid_alive(pid))

    def command(self):
        raise NotImplementedError

    def start(self, timeout=30):
        if self.running():
            return False
        command = self.command()
        if port_open(self.port):
            raise LaunchError(f"port {self.port} is already in use; cannot start {self.what}")
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / f"{self.pid_file.stem}.out", "ab")
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        wait_for(lambda: port_open(self.port) or proc.poll() is not None, timeout,
                 f"{self.what} on port {self.port}")
        if proc.poll() is not None:
            raise LaunchError(f"{self.what} exited; see {log.name}")
        return True

    def stop(self):
        stop_pid(read_pid(self.pid_file))
        self.pid_file.unlink(missing_ok=True)


class MongoWire(LocalServer):
    """The embedded MongoDB wire-protocol server (nx-27017) on one port."""
    what = "MongoDB wire server"

    def __init__(self, data_dir, port, venv=MONGO_VENV):
        super().__init__(data_dir, port, "mongo.pid")
        self.venv = Path(venv)

    @property
    def uri(self):
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self):
        binary = self.venv / "bin" / "nx-27017"
        if not binary.exists():
            raise LaunchError(f"{binary} missing: run `make deps` (installs nx-27017 "
                              "in its own virtualenv)")
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        return [str(binary), "--data-dir", str(self.dir / "data"), "--host", "127.0.0.1",
                "-p", str(self.port), "--log-file", str(self.dir / "mongo.log"),
                "--pid-file", str(self.dir / "nx.pid")]


class MailSink(LocalServer):
    """A local SMTP server (aiosmtpd) keeping every message in a Maildir: the
    e-mail provider of a platform on this machine, and of the tests."""
    what = "SMTP server"

    def __init__(self, data_dir, port):
        super().__init__(data_dir, port, "smtp.pid")
        self.maildir = self.dir / "maildir"

    def command(self):
        return [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
                "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)]

    def messages(self):
        """Every message received: to, subject and text."""
        import mailbox
        from email.header import decode_header, make_header
        if not self.maildir.exists():
            return []
        out = []
        for message in mailbox.Maildir(str(self.maildir), create=False):
            body = message.get_payload(decode=True).decode(
                message.get_content_charset() or "utf-8")
            out.append({"to": message["To"], "body": body, "subject": str(make_header(
                decode_header(message["Subject"])))})
        return out


def nameko_env(config_env):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in config_env.items()})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_service(name, config_file, env, log_path, pid_path):
    """``nameko run services.<name>.service`` as its own process group."""
    if read_pid(pid_path) and pid_alive(read_pid(pid_path)):
        return False
    nameko = Path(sys.executable).parent / "nameko"
    log = open(log_path, "ab")
    proc = subprocess.Popen([str(nameko), "run", f"services.{name}.service", "--config",
                             str(config_file)], env=nameko_env(env), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    Path(pid_path).write_text(str(proc.pid))
    return True


def http_status(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_ready(urls, timeout=90, pid_files=()):
    """Every URL answers 200; fails at once if a service process has died."""
    def ready():
        for pid_file in pid_files:
            if not pid_alive(read_pid(pid_file) or 0):
                raise LaunchError(f"{Path(pid_file).stem} exited during start-up")
        return all(http_status(u) == 200 for u in urls)
    wait_for(ready, timeout, "every service's /readyz to answer 200: " + ", ".join(urls))


# --- platforms -------------------------------------------------------------

PLATFORMS = {
    "county": {"ORG_CODE": "140428", "ORG_NAME": "长子县", "ORG_LEVEL": "county",
               "PARENT_ORG": "140400", "http_base": 8000, "amqp": 5672, "mgmt": 15672,
               "prom": 15692, "dist": 25672, "mongo": 27017, "smtp": 2525},
    "city": {"ORG_CODE": "140400", "ORG_NAME": "长治市", "ORG_LEVEL": "city",
             "PARENT_ORG": "140000", "CHILD_ORGS": "140428=长子县", "http_base": 8100, "amqp": 5673, "mgmt": 15673,
             "prom": 15693, "dist": 25673, "mongo": 27018, "smtp": 2526},
}
PAIR = ("county", "city")   # `make up`: the county 140428 and its city 140400, linked


def platform_spec(name):
    """A platform's settings, its ports moved by ``ZHZX_PORT_SHIFT``."""
    spec = dict(PLATFORMS[name])
    for key in PORT_KEYS:
        spec[key] += PORT_SHIFT
    return spec


def secrets_file():
    path = RUN / "secrets.json"
    if not path.exists():
        RUN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"PERSON_KEY_SECRET": secrets.token_hex(24)}))
    data = json.loads(path.read_text())
    return path, data


def platform_env(name):
    spec = platform_spec(name)
    base = RUN / name
    _, shared = secrets_file()
    own = base / "secrets.json"
    if not own.exists():
        base.mkdir(parents=True, exist_ok=True)
        own.write_text(json.dumps({"JWT_SECRET": secrets.token_hex(24)}))
    env = {k: spec.get(k, "") for k in ("ORG_CODE", "ORG_NAME", "ORG_LEVEL", "PARENT_ORG",
                                         "CHILD_ORGS")}
    env.update(json.loads(own.read_text()))
    env["PERSON_KEY_SECRET"] = shared["PERSON_KEY_SECRET"]
    env["AMQP_URI"] = f"amqp://guest:guest@127.0.0.1:{spec['amqp']}/"
    env["MONGO_URI"] = f"mongodb://127.0.0.1:{spec['mongo']}/"
    env["SMTP_HOST"], env["SMTP_PORT"] = "127.0.0.1", spec["smtp"]
    return env


def platform_parts(name):
    spec = platform_spec(name)
    base = RUN / name
    node = f"zhzx-{name}{PORT_SHIFT or ''}@localhost"
    broker = Broker(base / "rabbitmq", node=node, amqp_port=spec["amqp"],
                    mgmt_port=spec["mgmt"], prom_port=spec["prom"], dist_port=spec["dist"],
                    cluster_name=f"zhzx-{spec['ORG_CODE']}")
    mongo = MongoWire(base / "mongo", spec["mongo"])
    mail = MailSink(base / "mail", spec["smtp"])
    return base, broker, mongo, mail


def service_url(name, service, path=""):
    return f"http://127.0.0.1:{platform_spec(name)['http_base'] + SERVICES[service]}{path}"


def write_platform_config(name):
    """The resolved settings of a platform, for ``zhzx`` commands."""
    env = platform_env(name)
    path = RUN / name / "platform.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    return path


def up(name="county", *, demo=True, out=print):
    base, broker, mongo, mail = platform_parts(name)
    env = platform_env(name)
    (base / "pids").mkdir(parents=True, exist_ok=True)
    (base / "logs").mkdir(parents=True, exist_ok=True)
    out(f"[{name}] broker {broker.node} on 127.0.0.1:{broker.amqp_port}: "
        + ("started" if broker.start() else "already running"))
    out(f"[{name}] MongoDB wire server on 127.0.0.1:{mongo.port}: "
        + ("started" if mongo.start() else "already running"))
    out(f"[{name}] SMTP server (e-mail kept in {mail.maildir}) on 127.0.0.1:{mail.port}: "
        + ("started" if mail.start() else "already running"))
    config_file = ROOT / "deploy" / "config" / "platform.yaml"
    for service, offset in SERVICES.items():
        port = platform_spec(name)["http_base"] + offset
        service_env = dict(env, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
        started = start_service(service, config_file, service_env,
                                base / "logs" / f"{service}.log", base / "pids" / f"{service}.pid")
        out(f"[{name}] {service}: " + ("started" if started else "already running"))
    write_platform_config(name)
    try:
        wait_ready([service_url(name, s, "/readyz") for s in SERVICES],
                   pid_files=[base / "pids" / f"{s}.pid" for s in SERVICES])
    except LaunchError as exc:
        raise LaunchError(f"{exc}; see logs in {base / 'logs'}") from None
    if demo:
        from deploy.demo import load_demo
        load_demo(name, out=out)
    return env


def down(name="county", out=print):
    base, broker, mongo, mail = platform_parts(name)
    pids = base / "pids"
    for service in SERVICES:
        pid_path = pids / f"{service}.pid"
        pid = read_pid(pid_path)
        if pid:
            stop_pid(pid)
            out(f"[{name}] {service} (pid {pid}) stopped")
        pid_path.unlink(missing_ok=True)
    if mongo.running():
        out(f"[{name}] MongoDB wire server (pid {read_pid(mongo.pid_file)}) stopped")
    mongo.stop()
    if mail.running():
        out(f"[{name}] SMTP server (pid {read_pid(mail.pid_file)}) stopped")
    mail.stop()
    if broker.running():
        out(f"[{name}] broker {broker.node} (pid {read_pid(broker.pid_file)}) stopped")
    broker.stop()


def stop_idle_epmd():
    """The Erlang port mapper is started by the first node; stop it when no
    node remains registered."""
    epmd = shutil.which("epmd")
    if not epmd:
        return
    names = subprocess.run([epmd, "-names"], capture_output=True, text=True)
    if names.returncode == 0 and "name " not in names.stdout:
        subprocess.run([epmd, "-kill"], capture_output=True)
