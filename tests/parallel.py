"""`make test`: the suite in a few pytest processes at once.

Most of the suite waits on brokers, databases and processes rather than on the
CPU, so it runs as parallel pytest processes, each with its own broker and Mongo
wire server (the `infra` fixture) and each on its own range of ports. pytest-xdist cannot
drive eventlet-patched workers, hence plain processes.

Every test file belongs to exactly one group: the groups below name the long
ones; any other file joins the group that is shortest by the weights. Each
group's output is printed whole when it ends; the exit status is the first
failing group's, or 0.

    python -m tests.parallel [pytest options…]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# the long-running files, in groups of about equal length (seconds, measured)
GROUPS = [
    {"tests/e2e/test_make_up_down.py": 170, "tests/e2e/test_nameko_run.py": 30,
     "tests/e2e/test_openapi_contract.py": 100},
    {"tests/faults/test_faults.py": 220, "tests/e2e/test_asyncapi_subscriber.py": 130},
    {"tests/service/test_linkage.py": 250, "tests/service/test_kernel_reliability.py": 60,
     "tests/service/test_replicas.py": 70},
    {"tests/service/test_liaison.py": 60, "tests/service/test_notify.py": 45,
     "tests/service/test_authorization.py": 60, "tests/service/test_provincial.py": 240},
]
DEFAULT_WEIGHT = 20


def groups():
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py"))
    named = {f for g in GROUPS for f in g}
    missing = named - set(files)
    if missing:
        raise SystemExit(f"tests.parallel names files that do not exist: {sorted(missing)}")
    out = [dict(g) for g in GROUPS]
    for f in files:
        if f not in named:
            min(out, key=lambda g: sum(g.values()))[f] = DEFAULT_WEIGHT
    return [sorted(g) for g in out]


def port_range(i):
    """Each group its own ports for what it starts: 21400–25399, clear of the
    default pair's ports, of the shifted networks' (tests.support.free_shift)
    and of the OS's ephemeral range (32768 and above)."""
    return f"{21400 + 1000 * i}-{21400 + 1000 * (i + 1) - 1}"


def failure_summary(output, most=60):
    """The lines of a pytest run's output that say which test failed, on which
    line and why: each traceback's ``E`` lines and ``file:line: Error``
    locations, then the short summary (``-ra``)."""
    lines = output.splitlines()
    located = [line for line in lines
               if line.startswith("E ") or re.match(r"^tests/\S+:\d+: \w", line)]
    summary = []
    for n, line in enumerate(lines):
        if "short test summary info" in line:
            summary = [s for s in lines[n + 1:] if not s.startswith("=")]
            break
    return "\n".join(located[-most:] + summary)


def main(argv):
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="zhzx-test-logs-"))
    running = []
    for i, files in enumerate(groups()):
        log = (logs / f"group-{i}.log").open("w")
        # its own --basetemp: pytest's default one is shared, and a starting
        # process removes the older numbered directories of the others
        cmd = [sys.executable, "-m", "pytest", f"--basetemp={logs / f'tmp-{i}'}", *argv, *files]
        running.append((i, files, log, subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, ZHZX_PORT_RANGE=port_range(i)))))
    status = 0
    pending = list(running)
    while pending:
        for item in list(pending):
            i, files, log, proc = item
            if proc.poll() is None:
                continue
            pending.remove(item)
            log.close()
            print(f"\n===== group {i} ({len(files)} files) exit {proc.returncode} "
                  f"after {time.monotonic() - started:.0f} s =====", flush=True)
            sys.stdout.write((logs / f"group-{i}.log").read_text())
            sys.stdout.flush()
            status = status or proc.returncode
        time.sleep(1)   # polling child processes, not synchronising a test
    for i, files, log, proc in running:   # last, where a truncated log still shows it
        if proc.returncode:
            print(f"\n===== why group {i} failed =====")
            print(failure_summary((logs / f"group-{i}.log").read_text()))
    print(f"\nall groups done in {time.monotonic() - started:.0f} s; exit {status}")
    if status == 0:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print(f"logs and the tests' temporary directories are kept in {logs}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
