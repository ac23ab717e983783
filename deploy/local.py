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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
# ZHZX_RUN_DIR and ZHZX_PORT_SHIFT let a second copy (an end-to-end test) run
# beside the usual one without touching it. `up` records the shift in the run
# directory, so every later command needs ZHZX_RUN_DIR alone.
RUN = Path(os.environ.get("ZHZX_RUN_DIR") or ROOT / ".run")
PORT_KEYS = ("http_base", "amqp", "amqps", "mgmt", "prom", "dist", "mongo", "smtp", "province")
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
MONGO_VENV = ROOT / ".venv-mongo"
NX_VERSION = "0.8.1"
PLUGINS = ["rabbitmq_management", "rabbitmq_federation",
           "rabbitmq_federation_management", "rabbitmq_prometheus"]
SERVICES = {"members": 1, "proposals": 2, "liaison": 3, "notify": 4,
            "provincial": 5}  # service → port offset (8000 + offset)


class LaunchError(RuntimeError):
    pass


_next_port = []


def free_port():
    """A loopback port free now: the OS's choice, or the next free one of
    ``ZHZX_PORT_RANGE`` (``lo-hi``) so that processes started side by side
    (the test groups) never pick each other's ports."""
    span = os.environ.get("ZHZX_PORT_RANGE")
    if not span:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    lo, hi = (int(x) for x in span.split("-"))
    if not _next_port:
        _next_port.append(lo + os.getpid() % (hi - lo))
    for _ in range(hi - lo):
        port = _next_port[0]
        _next_port[0] = lo + (port + 1 - lo) % (hi - lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LaunchError(f"no free port in ZHZX_PORT_RANGE {span}")


def port_open(port, host="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def process_identity(pid):
    """``(start time, command line)`` of a live process (not a zombie), or
    None. The start time (clock ticks after boot) tells a process from a
    later one that got the same PID."""
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return None
        cmd = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
        return int(fields[19]), cmd.replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, ValueError, IndexError, TypeError):
        return None


def pid_alive(pid):
    return bool(pid) and process_identity(pid) is not None


def write_pid(path, pid):
    """Record ``pid`` with its start time and command line, so that a later
    reader can prove the PID still means this process."""
    identity = process_identity(pid) or (None, "")
    Path(path).write_text(json.dumps({"pid": pid, "start": identity[0], "cmd": identity[1]},
                                     ensure_ascii=False))


def read_pid(path, marker=None):
    """The PID recorded in ``path`` if that very process still runs: the same
    start time as recorded. A bare number (a PID file the
    program wrote itself) is trusted only if the command line names
    ``marker``. Anything else (stale, reused by another process, unreadable)
    is None: never reported as running, never signalled."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, int) and not isinstance(record, bool):
        record = {"pid": record}
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    identity = process_identity(record["pid"])
    if identity is None:
        return None
    if record.get("start") is not None:
        # the start time proves it (the command line can still be empty right
        # after the fork, so it is kept for people, not compared)
        if identity[0] != record["start"]:
            return None
    elif not marker or marker not in identity[1]:
        return None
    return record["pid"]


def process_uptime(pid):
    """Seconds since ``pid`` started (None if it does not run)."""
    identity = process_identity(pid)
    if identity is None:
        return None
    try:
        booted = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, booted - identity[0] / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return None


def process_tree(pid):
    """``pid`` and every process under it (a broker's node is several), from
    /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current not in out:
            out.append(current)
            todo += children.get(current, [])
    return out


def process_rss(pid):
    """Resident memory in bytes of ``pid`` and every process under it; None
    if it does not run."""
    total = 0
    for current in process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            if current == pid:
                return None
    return total


def process_cpu(pid):
    """CPU seconds (user and system) used so far by ``pid`` and every
    process under it; None if it does not run."""
    total = 0
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime
        except (OSError, ValueError, IndexError):
            if current == pid:
                return None
    return total / os.sysconf("SC_CLK_TCK")


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
    """One RabbitMQ node with its own name, ports and data directory.

    With ``tls`` (a directory of ``ca.crt``, ``tls.crt``, ``tls.key``) it
    also listens on ``amqps_port`` over TLS, verifying the peer's
    certificate (federation links connect there). With ``admin`` (name,
    password) the node's first start creates that administrator instead of
    guest/guest."""

    def __init__(self, base_dir, *, node, amqp_port, mgmt_port, prom_port, dist_port,
                 cluster_name, amqps_port=None, tls=None, admin=None):
        self.dir = Path(base_dir)
        self.node = node
        self.amqp_port, self.mgmt_port = amqp_port, mgmt_port
        self.prom_port, self.dist_port = prom_port, dist_port
        self.amqps_port, self.tls = amqps_port, tls
        self.admin = tuple(admin) if admin else ("guest", "guest")
        self.cluster_name = cluster_name
        self.pid_file = self.dir / "rabbitmq.pid"    # written by RabbitMQ itself
        self.record = self.dir / "broker.pid"        # the same PID, proven (write_pid)

    @property
    def amqp_uri(self):
        return self.uri_for(*self.admin)

    def uri_for(self, user, password):
        return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:" \
               f"{self.amqp_port}/"

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
            *self.tls_config(),
            *self.admin_config(),
            "",
        ]))
        (self.dir / "rabbitmq.conf").chmod(0o600)
        (self.dir / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")

    def tls_config(self):
        if not self.tls:
            return []
        tls = Path(self.tls)
        return [f"listeners.ssl.1 = 127.0.0.1:{self.amqps_port}",
                f"ssl_options.cacertfile = {tls / 'ca.crt'}",
                f"ssl_options.certfile = {tls / 'tls.crt'}",
                f"ssl_options.keyfile = {tls / 'tls.key'}",
                "ssl_options.verify = verify_peer",
                "ssl_options.fail_if_no_peer_cert = true",
                "ssl_options.versions.1 = tlsv1.3",
                "ssl_options.versions.2 = tlsv1.2"]

    def admin_config(self):
        if self.admin == ("guest", "guest"):
            return []
        return [f"default_user = {self.admin[0]}", f"default_pass = {self.admin[1]}",
                "default_user_tags.administrator = true",
                "default_permissions.configure = .*", "default_permissions.read = .*",
                "default_permissions.write = .*"]

    def ensure_admin(self):
        """The administrator exists and guest does not: a node whose database
        was made before (with guest/guest) is brought in line through
        rabbitmqctl, which needs no password."""
        if self.admin == ("guest", "guest"):
            return False
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    f"{self.mgmt_url}/api/whoami", headers={"Authorization": basic_auth(
                        *self.admin)}), timeout=10) as resp:
                if resp.status == 200:
                    return False
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                raise LaunchError(f"{self.node} management API: HTTP {exc.code}") from None
        user, password = self.admin
        if user not in self.ctl("list_users", "--quiet", "--no-table-headers"):
            self.ctl("add_user", user, password)
        else:
            self.ctl("change_password", user, password)
        self.ctl("set_user_tags", user, "administrator")
        self.ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        self.ctl("delete_user", "guest", check=False)
        return True

    def pid(self):
        return read_pid(self.record) or read_pid(self.pid_file, marker=self.marker)

    @property
    def marker(self):
        """What the node's command line names: its own home directory."""
        return f"-home {self.dir}"

    def running(self):
        return bool(self.pid())

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
        for port in (self.amqp_port, self.mgmt_port, self.prom_port, self.dist_port,
                     *([self.amqps_port] if self.tls else [])):
            if port_open(port):
                raise LaunchError(f"port {port} is already in use; cannot start {self.node}")
        self.write_config()
        log = open(self.dir / "server.out", "ab")
        subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env(),
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, cwd=self.dir)
        wait_for(lambda: self.pid_file.exists(), 30, f"{self.node} to write its pid file")
        self.ctl("wait", "--timeout", str(timeout), str(self.pid_file), timeout=timeout + 10)
        wait_for(lambda: port_open(self.amqp_port) and port_open(self.mgmt_port), 30,
                 f"{self.node} AMQP and management ports")
        pid = read_pid(self.pid_file, marker=self.marker)
        if pid:
            write_pid(self.record, pid)
        return True

    def stop_app(self):
        self.ctl("stop_app")

    def start_app(self):
        self.ctl("start_app")
        wait_for(lambda: port_open(self.amqp_port), 30, f"{self.node} AMQP port")

    def stop(self):
        pid = self.pid()
        if pid:
            try:
                self.ctl("shutdown", timeout=60, check=False)
            except subprocess.TimeoutExpired:
                pass
            stop_pid(pid)
        self.pid_file.unlink(missing_ok=True)
        self.record.unlink(missing_ok=True)


class LocalServer:
    """A server process of the platform's own, recorded by PID."""
    what = "server"

    def __init__(self, data_dir, port, pid_name):
        self.dir = Path(data_dir)
        self.port = port
        self.pid_file = self.dir / pid_name

    def pid(self):
        return read_pid(self.pid_file)

    def running(self):
        return bool(self.pid())

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
        write_pid(self.pid_file, proc.pid)
        wait_for(lambda: port_open(self.port) or proc.poll() is not None, timeout,
                 f"{self.what} on port {self.port}")
        if proc.poll() is not None:
            raise LaunchError(f"{self.what} exited; see {log.name}")
        return True

    def stop(self):
        stop_pid(self.pid())
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
                decode_header(message["Subject"]))),
                "from": str(make_header(decode_header(message["From"] or "")))})
        return out


class ProvinceSim(LocalServer):
    """The provincial platform's simulator (deploy/province_sim.py) on one
    port, with the apps (platform code → secret) that may call it."""
    what = "provincial platform simulator"

    def __init__(self, data_dir, port, apps):
        super().__init__(data_dir, port, "province.pid")
        self.apps = apps   # {app id: {"secret": …, "algorithm": …}}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        apps = self.dir / "apps.json"
        apps.write_text(json.dumps(self.apps))
        apps.chmod(0o600)
        return [sys.executable, str(ROOT / "deploy" / "province_sim.py"), "--port", str(self.port),
                "--data", str(self.dir / "data"), "--apps-file", str(apps)]

    def admin(self, method, path, body=None):
        request = urllib.request.Request(f"{self.url}/admin/{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())


def nameko_env(config_env):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in config_env.items()})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_service(name, config_file, env, log_path, pid_path):
    """``nameko run services.<name>.service`` as its own process group."""
    nameko = Path(sys.executable).parent / "nameko"
    return start_process([str(nameko), "run", f"services.{name}.service", "--config",
                          str(config_file)], env, log_path, pid_path)


def start_process(cmd, env, log_path, pid_path):
    """``cmd`` in the checkout, as its own process group, its PID recorded."""
    if read_pid(pid_path):
        return False
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, env=nameko_env(env), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    write_pid(pid_path, proc.pid)
    return True


def basic_auth(user, password):
    import base64
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


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
            if not read_pid(pid_file):
                raise LaunchError(f"{Path(pid_file).stem} exited during start-up")
        return all(http_status(u) == 200 for u in urls)
    wait_for(ready, timeout, "every service's /readyz to answer 200: " + ", ".join(urls))


# --- platforms -------------------------------------------------------------

PLATFORMS = {
    "county": {"ORG_CODE": "140428", "ORG_NAME": "长子县", "ORG_LEVEL": "county",
               "PARENT_ORG": "140400", "PARENT_ORG_NAME": "长治市", "http_base": 8000, "amqp": 5672,
               "amqps": 5671, "mgmt": 15672,
               "prom": 15692, "dist": 25672, "mongo": 27017, "smtp": 2525},
    "city": {"ORG_CODE": "140400", "ORG_NAME": "长治市", "ORG_LEVEL": "city",
             "PARENT_ORG": "140000", "PARENT_ORG_NAME": "山西省", "CHILD_ORGS": "140428=长子县",
             "http_base": 8100, "amqp": 5673, "amqps": 5674, "mgmt": 15673,
             "province": 8900,   # the provincial platform's simulator, for the city
             "prom": 15693, "dist": 25673, "mongo": 27018, "smtp": 2526},
}
PAIR = ("county", "city")   # `make up`: the county 140428 and its city 140400, linked

# The city's counties (GB/T 2260), for a simulated province's network beside
# the default county 长子县 (140428): `define_network`.
CITY_COUNTIES = [("140403", "潞州区"), ("140404", "上党区"), ("140405", "屯留区"),
                 ("140406", "潞城区"), ("140423", "襄垣县"), ("140425", "平顺县"),
                 ("140426", "黎城县"), ("140427", "壶关县"), ("140429", "武乡县"),
                 ("140430", "沁县"), ("140431", "沁源县")]
NETWORK_FILE = "platforms.json"


def define_network(counties):
    """The city and ``counties`` counties in all: the default county and the
    city's others (``county-<org>``), on ports of their own; written to the
    run directory, so every later command and the supervisor see them.
    Returns the counties' platform names."""
    if not 1 <= counties <= len(CITY_COUNTIES) + 1:
        raise LaunchError(f"a network has 1 to {len(CITY_COUNTIES) + 1} counties")
    extra = {}
    for index, (org, org_name) in enumerate(CITY_COUNTIES[:counties - 1], start=1):
        extra[f"county-{org}"] = dict(
            PLATFORMS["county"], ORG_CODE=org, ORG_NAME=org_name,
            http_base=8200 + 10 * index, amqp=5700 + index, amqps=5750 + index,
            mgmt=15700 + index, prom=15750 + index, dist=25700 + index,
            mongo=27100 + index, smtp=2600 + index)
    names = ["county", *extra]
    children = [PLATFORMS["county"], *extra.values()]
    extra["city"] = dict(PLATFORMS["city"], CHILD_ORGS=",".join(
        f"{c['ORG_CODE']}={c['ORG_NAME']}" for c in children))
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / NETWORK_FILE).write_text(json.dumps(extra, ensure_ascii=False))
    PLATFORMS.update(extra)
    return names


def load_network():
    """The platforms a run directory's network defined (none by default)."""
    try:
        PLATFORMS.update(json.loads((RUN / NETWORK_FILE).read_text()))
    except (OSError, ValueError):
        pass


load_network()


def default_ports():
    """Every port of the default platforms, named (``county amqp``)."""
    ports = {}
    for name, spec in PLATFORMS.items():
        ports.update({spec[key]: f"{name} {key}" for key in PORT_KEYS
                      if key != "http_base" and key in spec})
        ports.update({spec["http_base"] + offset: f"{name} {service}"
                      for service, offset in SERVICES.items()})
    return ports


def check_shift(shift):
    """A shift that moves no port onto one of the default platforms' ports
    (which a `make up` on this machine uses) and keeps every port valid."""
    defaults = default_ports()
    if shift:
        for port, what in sorted(defaults.items()):
            if port + shift in defaults:
                raise LaunchError(
                    f"ZHZX_PORT_SHIFT={shift} moves {what} ({port}) onto {port + shift}, "
                    f"the {defaults[port + shift]} port of the default platforms; "
                    "choose another shift (e.g. 3000)")
    if min(defaults) + shift < 1024 or max(defaults) + shift > 65535:
        raise LaunchError(f"ZHZX_PORT_SHIFT={shift} moves ports outside 1024–65535")
    return shift


def port_shift():
    """The run directory's port shift: the one `up` recorded there, else
    ``ZHZX_PORT_SHIFT`` (0 when neither). Both given and different is an error."""
    recorded = None
    try:
        recorded = int(json.loads((RUN / "ports.json").read_text())["shift"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raw = os.environ.get("ZHZX_PORT_SHIFT")
    if raw not in (None, ""):
        try:
            wanted = int(raw)
        except ValueError:
            raise LaunchError(f"ZHZX_PORT_SHIFT={raw!r} is not a whole number") from None
        if recorded is not None and wanted != recorded:
            raise LaunchError(f"{RUN} runs with port shift {recorded}, not {wanted}; "
                              "unset ZHZX_PORT_SHIFT or use another ZHZX_RUN_DIR")
        return check_shift(wanted)
    return check_shift(recorded or 0)


def record_shift():
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / "ports.json").write_text(json.dumps({"shift": port_shift()}))


def platform_spec(name):
    """A platform's settings, its ports moved by the run's port shift."""
    spec = dict(PLATFORMS[name])
    shift = port_shift()
    for key in PORT_KEYS:
        if key in spec:
            spec[key] += shift
    return spec


def secrets_file():
    path = RUN / "secrets.json"
    if not path.exists():
        RUN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"PERSON_KEY_SECRET": secrets.token_hex(24)}))
    data = json.loads(path.read_text())
    return path, data


def own_secrets(name):
    """The platform's own secrets (its JWT key and link signing key), made
    once in its run directory, never committed (mode 600)."""
    from services.common.signing import new_private_key
    own = RUN / name / "secrets.json"
    data = json.loads(own.read_text()) if own.exists() else {}
    wanted = {"JWT_SECRET": lambda: secrets.token_hex(24), "LINK_SIGNING_KEY": new_private_key}
    if any(k not in data for k in wanted):
        data.update({k: make() for k, make in wanted.items() if k not in data})
        own.parent.mkdir(parents=True, exist_ok=True)
        own.write_text(json.dumps(data))
        own.chmod(0o600)
    return data


def broker_secrets(name):
    """The platform broker's passwords, made once in its run directory (mode
    600): the administrator's (management and ``zhzx`` commands) and each
    service's own user's."""
    path = RUN / name / "broker-users.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    wanted = ["admin", *(f"svc-{s}" for s in SERVICES)]
    if any(k not in data for k in wanted):
        data.update({k: secrets.token_hex(16) for k in wanted if k not in data})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        path.chmod(0o600)
    return data


BROKER_ADMIN = "zhzx-admin"


def broker_admin(name):
    """(user, password) of the platform broker's administrator."""
    return BROKER_ADMIN, broker_secrets(name)["admin"]


def tls_dir(name):
    """The platform broker's certificates, signed by the run's local CA."""
    from deploy.tls import ensure_node
    return ensure_node(RUN / "ca", RUN / name / "tls", f"zhzx-{name}.localhost")


def restricted_calls():
    """``{"<service>.<method>": callers}`` of every RPC method marked
    ``answers_only``, read from the service classes."""
    import importlib
    out = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.service")
        cls = next(v for v in vars(module).values()
                   if isinstance(v, type) and getattr(v, "name", None) == service)
        for attr in dir(cls):
            callers = getattr(getattr(cls, attr, None), "answers_only", None)
            if callers:
                out[f"{service}.{attr}"] = tuple(callers)
    return out


def ensure_service_users(name):
    """Each service's own broker user (services/common/broker_users.py)."""
    from services.common import broker_users
    from services.common.federation import BrokerRef
    _, broker, _, _ = platform_parts(name)
    ref = BrokerRef(broker.mgmt_url, "127.0.0.1", broker.amqp_port, broker.admin)
    passwords, restricted = broker_secrets(name), restricted_calls()
    for service in SERVICES:
        broker_users.ensure(ref, service, passwords[broker_users.user_name(service)], restricted)


def province_secret(name):
    """The platform's shared secret with the provincial platform (HMAC), made
    once (mode 600); the simulator is given the same."""
    path = RUN / name / "province-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def trust_file(name):
    """The keys this platform accepts linked events under (``zhzx link`` writes them)."""
    return RUN / name / "link-trust.json"


def register_link_keys(county, city):
    """Each side of a county–city link registers the other's public key."""
    from services.common.signing import public_key, register_link
    register_link(trust_file(county), trust_file(city),
                  county_org=PLATFORMS[county]["ORG_CODE"], city_org=PLATFORMS[city]["ORG_CODE"],
                  county_keys=[public_key(own_secrets(county)["LINK_SIGNING_KEY"])],
                  city_keys=[public_key(own_secrets(city)["LINK_SIGNING_KEY"])])


def platform_env(name, service=None):
    """A platform's settings; ``AMQP_URI`` names ``service``'s own broker
    user, or the administrator (for ``zhzx`` commands) when none is given."""
    spec = platform_spec(name)
    _, shared = secrets_file()
    env = {k: spec.get(k, "") for k in ("ORG_CODE", "ORG_NAME", "ORG_LEVEL", "PARENT_ORG",
                                         "PARENT_ORG_NAME",
                                         "CHILD_ORGS")}
    env.update(own_secrets(name))
    env["LINK_TRUST_FILE"] = str(trust_file(name))
    env["PERSON_KEY_SECRET"] = shared["PERSON_KEY_SECRET"]
    user = (f"svc-{service}", broker_secrets(name)[f"svc-{service}"]) if service \
        else broker_admin(name)
    env["AMQP_URI"] = f"amqp://{user[0]}:{user[1]}@127.0.0.1:{spec['amqp']}/"
    env["MONGO_URI"] = f"mongodb://127.0.0.1:{spec['mongo']}/"
    env["SMTP_HOST"], env["SMTP_PORT"] = "127.0.0.1", spec["smtp"]
    if "province" in spec:   # the city reaches the (simulated) province
        env["PROVINCE_URL"] = f"http://127.0.0.1:{spec['province']}"
        env["PROVINCE_SECRET"] = province_secret(name)
    return env


def platform_parts(name):
    spec = platform_spec(name)
    base = RUN / name
    node = f"zhzx-{name}{port_shift() or ''}@localhost"
    broker = Broker(base / "rabbitmq", node=node, amqp_port=spec["amqp"],
                    mgmt_port=spec["mgmt"], prom_port=spec["prom"], dist_port=spec["dist"],
                    cluster_name=f"zhzx-{spec['ORG_CODE']}", amqps_port=spec["amqps"],
                    tls=tls_dir(name), admin=broker_admin(name))
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


class ServiceProcess:
    """One service of a platform: ``nameko run`` with the platform's settings."""
    what = "service"

    def __init__(self, platform, service):
        self.platform, self.service = platform, service
        base = RUN / platform
        self.pid_file = base / "pids" / f"{service}.pid"
        self.log = base / "logs" / f"{service}.log"
        self.port = platform_spec(platform)["http_base"] + SERVICES[service]

    def pid(self):
        return read_pid(self.pid_file)

    def running(self):
        return bool(self.pid())

    def start(self):
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(platform_env(self.platform, self.service),
                   WEB_SERVER_ADDRESS=f"127.0.0.1:{self.port}")
        return start_service(self.service, ROOT / "deploy" / "config" / "platform.yaml", env,
                             self.log, self.pid_file)

    def stop(self):
        stop_pid(self.pid())
        self.pid_file.unlink(missing_ok=True)

    def readiness(self):
        """``ready``, or what its /readyz says is missing."""
        return service_readiness(self.platform, self.service)


def service_readiness(platform, service):
    """``ready``, or what the service's /readyz says is missing."""
    try:
        with urllib.request.urlopen(service_url(platform, service, "/readyz"),
                                    timeout=3) as resp:
            return "ready" if resp.status == 200 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        try:
            missing = json.loads(exc.read()).get("unavailable") or []
        except ValueError:
            missing = []
        return "not ready: " + (", ".join(missing) or f"HTTP {exc.code}")
    except OSError:
        return "not answering"


class ServicesProcess(ServiceProcess):
    """All services of a platform in one process (deploy/cohost.py), each
    with its own broker user and port: ``zhzx up --one-process``."""

    def __init__(self, platform):
        self.platform, self.service = platform, "services"
        base = RUN / platform
        self.pid_file = base / "pids" / "services.pid"
        self.log = base / "logs" / "services.log"

    def start(self):
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = platform_env(self.platform)
        del env["AMQP_URI"]   # the administrator's: each service has its own below
        http_base = platform_spec(self.platform)["http_base"]
        for service, offset in SERVICES.items():
            own = platform_env(self.platform, service)
            env[f"{service.upper()}__AMQP_URI"] = own["AMQP_URI"]
            env[f"{service.upper()}__WEB_SERVER_ADDRESS"] = f"127.0.0.1:{http_base + offset}"
        return start_process([sys.executable, "-m", "deploy.cohost", "--config",
                              str(ROOT / "deploy" / "config" / "platform.yaml"), *SERVICES],
                             env, self.log, self.pid_file)

    def readiness(self):
        """``ready`` when every service is; else each one's answer."""
        answers = {s: service_readiness(self.platform, s) for s in SERVICES}
        if all(a == "ready" for a in answers.values()):
            return "ready"
        return "; ".join(f"{s}: {a}" for s, a in answers.items() if a != "ready")


def one_process_file(name):
    return RUN / name / "one-process"


def runs_one_process(name):
    """Whether the platform runs its services in one process."""
    return one_process_file(name).exists()


def service_parts(name):
    """The processes that run a platform's services, by part name."""
    if runs_one_process(name):
        return {"services": ServicesProcess(name)}
    return {service: ServiceProcess(name, service) for service in SERVICES}


def port_readiness(port):
    return "ready" if port_open(port) else "not answering"


def parts(name):
    """A platform's parts in start order: broker, database, mail, services."""
    base, broker, mongo, mail = platform_parts(name)
    out = {"broker": broker, "mongo": mongo, "mail": mail}
    spec = platform_spec(name)
    if "province" in spec:
        out["province"] = ProvinceSim(base / "province", spec["province"], {
            spec["ORG_CODE"]: {"secret": province_secret(name), "algorithm": "hmac-sm3",
                               "callback": f"http://127.0.0.1:"
                                           f"{spec['http_base'] + SERVICES['provincial']}"
                                           "/api/v1/province/callbacks"}})
    out.update(service_parts(name))
    return out


def readiness(part):
    if isinstance(part, ServiceProcess):
        return part.readiness()
    return port_readiness(part.amqp_port if isinstance(part, Broker) else part.port)


def up(name="county", *, demo=True, one_process=False, out=print):
    """Starts what is not running of platform ``name``; ``one_process``: its
    services in one process (deploy/cohost.py) instead of one each."""
    record_shift()
    base = RUN / name
    running = [p for p in service_parts(name).values() if p.running()]
    if running and one_process != runs_one_process(name):
        raise LaunchError(f"{name} runs its services "
                          + ("in one process" if not one_process else "one process each")
                          + f"; `zhzx down --platform {name}` first")
    base.mkdir(parents=True, exist_ok=True)
    if one_process:
        one_process_file(name).write_text("services in one process (deploy/cohost.py)\n")
    else:
        one_process_file(name).unlink(missing_ok=True)
    env = platform_env(name)
    (base / "pids").mkdir(parents=True, exist_ok=True)
    (base / "logs").mkdir(parents=True, exist_ok=True)
    every = parts(name)
    broker, mongo, mail = every["broker"], every["mongo"], every["mail"]
    out(f"[{name}] broker {broker.node} on 127.0.0.1:{broker.amqp_port} (TLS "
        f"{broker.amqps_port}): " + ("started" if broker.start() else "already running"))
    if broker.ensure_admin():
        out(f"[{name}] broker administrator {broker.admin[0]} created, guest removed")
    ensure_service_users(name)
    out(f"[{name}] MongoDB wire server on 127.0.0.1:{mongo.port}: "
        + ("started" if mongo.start() else "already running"))
    out(f"[{name}] SMTP server (e-mail kept in {mail.maildir}) on 127.0.0.1:{mail.port}: "
        + ("started" if mail.start() else "already running"))
    if "province" in every:
        sim = every["province"]
        out(f"[{name}] provincial platform simulator on {sim.url}: "
            + ("started" if sim.start() else "already running"))
    services = service_parts(name)
    for part_name, part in services.items():
        started = part.start()
        out(f"[{name}] {part_name}: " + ("started" if started else "already running")
            + (f" ({', '.join(SERVICES)} in one process)" if part_name == "services" else ""))
    write_platform_config(name)
    try:
        wait_ready([service_url(name, s, "/readyz") for s in SERVICES],
                   pid_files=[p.pid_file for p in services.values()])
    except LaunchError as exc:
        raise LaunchError(f"{exc}; see logs in {base / 'logs'}") from None
    from deploy import supervise
    out(f"[{name}] supervisor: " + ("started" if supervise.start(name) else "already running"))
    if demo:
        from deploy.demo import load_demo
        load_demo(name, out=out)
    return env


def down(name="county", out=print):
    """Stops what `up` started: the supervisor first (so that nothing is
    restarted meanwhile), then the services all at once, then the servers they
    used, the broker last."""
    from deploy import supervise
    if supervise.stop(name):
        out(f"[{name}] supervisor stopped")
    every = parts(name)
    labels = {"broker": f"broker {every['broker'].node}", "mongo": "MongoDB wire server",
              "mail": "SMTP server", "province": "provincial platform simulator"}

    def stop(part_name):
        part = every[part_name]
        pid = part.pid()
        part.stop()
        if pid:
            out(f"[{name}] {labels.get(part_name, part_name)} (pid {pid}) stopped")

    services = [p for p in every if p not in labels]
    servers = [p for p in reversed(list(every)) if p in labels and p != "broker"]
    for stage in (services, servers, ["broker"]):
        at_once(stop, stage)


def at_once(fn, items):
    """``fn(item)`` for every item in threads of their own; the first error
    raised, after all have ended."""
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        for future in [pool.submit(fn, item) for item in items]:
            future.result()


def stop_idle_epmd():
    """The Erlang port mapper is started by the first node; stop it when no
    node remains registered."""
    epmd = shutil.which("epmd")
    if not epmd:
        return
    names = subprocess.run([epmd, "-names"], capture_output=True, text=True)
    if names.returncode == 0 and "name " not in names.stdout:
        subprocess.run([epmd, "-kill"], capture_output=True)
