"""Several services of one platform in one process: what ``nameko run`` does
for one service, for each of them, each with its own settings.

A county on one small machine need not pay a Python interpreter, nameko,
kombu and pymongo once per service: the five services share about 105 MB in
one process against about 400 MB in five (docs/performance.md). They stay
what they are: each its own nameko container, broker user, database and HTTP
port; they still talk only over the broker. What they share is the process:
one crash, SIGKILL or restart takes all of them, and /metrics on each port
shows the metrics of all (each series is labelled with its service).
Kubernetes runs one Deployment per service (k8s/), not this.

    python -m deploy.cohost --config deploy/config/platform.yaml members proposals …

Settings come from the config file with the process's environment, as for
``nameko run``; an environment variable ``<SERVICE>__<KEY>`` (e.g.
``MEMBERS__AMQP_URI``, ``PROPOSALS__WEB_SERVER_ADDRESS``) sets ``KEY`` for
that service alone.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402  (before anything opens a socket, as nameko run does)

import argparse  # noqa: E402
import errno  # noqa: E402
import logging  # noqa: E402
import logging.config  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from nameko.cli.run import import_service  # noqa: E402
from nameko.containers import get_container_cls  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from services.common.config import load_config  # noqa: E402


def service_env(service, services, environ):
    """The environment ``service`` reads its settings from: the process's,
    with its own ``<SERVICE>__<KEY>`` variables in place of ``KEY`` and
    without those of the other ``services``."""
    prefixes = tuple(f"{s.upper()}__" for s in services)
    own = f"{service.upper()}__"
    env = {k: v for k, v in environ.items() if not k.startswith(prefixes)}
    env.update({k[len(own):]: v for k, v in environ.items() if k.startswith(own)})
    return env


def config_for(service, services, config_file):
    """``config_file`` read as ``nameko run --config`` would in ``service``'s
    environment."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(service_env(service, services, saved))
        return load_config(config_file)
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Runner(ServiceRunner):
    """nameko's runner with one config per container."""

    def __init__(self):
        super().__init__(config={})

    def add(self, cls, config):
        self.service_map[cls.name] = get_container_cls(config)(cls, config)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("services", nargs="+", help="e.g. members proposals liaison")
    args = parser.parse_args(argv)
    configs = {s: config_for(s, args.services, args.config) for s in args.services}
    logging_config = next(iter(configs.values())).get("LOGGING")
    if logging_config:   # as nameko run: the file's logging (JSON lines, numbers redacted)
        logging.config.dictConfig(logging_config)
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    runner = Runner()
    for service, config in configs.items():
        [cls] = import_service(f"services.{service}.service")
        runner.add(cls, config)

    def shutdown(signum, frame):
        eventlet.spawn_n(runner.stop)   # a signal handler cannot use eventlet itself

    signal.signal(signal.SIGTERM, shutdown)
    runner.start()
    waiting = eventlet.spawn(runner.wait)   # re-raises the error of a container that died
    while True:
        try:
            waiting.wait()
            return 0
        except OSError as exc:
            if exc.errno != errno.EINTR:   # the signal interrupted the wait: wait again
                raise
        except KeyboardInterrupt:
            runner.stop()
            return 0


if __name__ == "__main__":
    sys.exit(main())
