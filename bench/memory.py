"""Resident memory of a platform idle after `zhzx up` (demo data loaded):
each process — broker, database, SMTP sink, the services — and the total,
for the two shapes of a local platform: one process per service (`zhzx up`)
and the services in one process (`zhzx up --one-process`), beside a baseline
measured in the same run: a bare Python process that imports nameko and
nothing of ours, the floor every service process pays.

Starts the county platform in a run directory and on ports of its own
(shifted), once per shape, waits for it to settle, measures, and stops it;
bounded in time.

    .venv/bin/python bench/memory.py [--settle-seconds 30] [--platform county]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.local import process_rss  # noqa: E402
from tests.support import free_shift  # noqa: E402

BIN = Path(sys.executable).parent


def megabytes(value):
    return f"{value / 2 ** 20:7.1f} MB"


def baseline():
    """RSS of a Python process with nameko imported (eventlet patched)."""
    proc = subprocess.Popen([sys.executable, "-c", (
        "import eventlet; eventlet.monkey_patch(); import nameko.runners, nameko.web.handlers, "
        "pymongo, kombu, sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        proc.stdout.readline()
        return process_rss(proc.pid)
    finally:
        proc.communicate("")


def measure(shape, args, floor):
    """Starts the platform (``shape``: per-service or one-process), lets it
    settle, prints each part's RSS and returns the total; stops it."""
    run = Path(tempfile.mkdtemp(prefix="zhzx-bench-memory-"))
    env = dict(os.environ, ZHZX_RUN_DIR=str(run), ZHZX_PORT_SHIFT=str(free_shift(3400)))
    zhzx = [str(BIN / "zhzx")]
    extra = ["--one-process"] if shape == "one-process" else []
    up = subprocess.run(zhzx + ["up", "--platform", args.platform, *extra], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=900)
    if up.returncode:
        sys.exit(up.stdout + up.stderr)
    try:
        time.sleep(min(args.settle_seconds, 300))   # idle: the demo's work done
        report = json.loads(subprocess.run(
            zhzx + ["status", "--platform", args.platform, "--json"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=120).stdout)[0]
        services = [r for r in report["parts"] if r["part"] not in
                    ("broker", "mongo", "mail", "province")]
        print(f"\nthe {args.platform} platform idle after zhzx up{''.join(' ' + e for e in extra)}"
              f" (demo loaded), services {'in one process' if extra else 'one process each'}:")
        for row in report["parts"]:
            extra_text = f"  {row['rss_bytes'] / floor:4.1f}× baseline" if row in services \
                else ""
            print(f"  {row['part']:<11} {megabytes(row['rss_bytes'])}{extra_text}")
        total = report["rss_bytes"]
        print(f"  {'total':<11} {megabytes(total)}  (services: "
              f"{megabytes(sum(r['rss_bytes'] for r in services))} in {len(services)} "
              f"process{'es' if len(services) > 1 else ''})")
        return total
    finally:
        subprocess.run(zhzx + ["down", "--platform", args.platform], env=env, cwd=ROOT,
                       capture_output=True, timeout=300)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="county")
    parser.add_argument("--settle-seconds", type=float, default=30)
    args = parser.parse_args()
    floor = baseline()
    print(f"resident memory; baseline: a Python process with nameko imported "
          f"{megabytes(floor)}")
    each = measure("per-service", args, floor)
    one = measure("one-process", args, floor)
    print(f"\nservices in one process: {megabytes(one)} against {megabytes(each)} with one "
          f"process each ({one / each:.0%})")


if __name__ == "__main__":
    main()
