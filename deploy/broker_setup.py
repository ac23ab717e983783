"""Create or update each service's own broker user on a platform's broker
(services/common/broker_users.py), for deployments that do not use `zhzx up`:
the compose file runs it once before the services.

    python -m deploy.broker_setup

Settings from the environment: ``BROKER_MGMT_URL`` (the management API),
``BROKER_ADMIN`` (``user:password``) and ``SVC_<SERVICE>_PASSWORD`` for every
service. Idempotent; a missing setting stops it with its name.
"""
import os
import sys
import time

import requests

from deploy.local import SERVICES, restricted_calls
from services.common import broker_users
from services.common.federation import BrokerRef


def main():
    missing = [k for k in ("BROKER_MGMT_URL", "BROKER_ADMIN") if not os.environ.get(k)]
    missing += [f"SVC_{s.upper()}_PASSWORD" for s in SERVICES
                if not os.environ.get(f"SVC_{s.upper()}_PASSWORD")]
    if missing:
        sys.exit("broker setup: set " + ", ".join(missing))
    user, _, password = os.environ["BROKER_ADMIN"].partition(":")
    broker = BrokerRef(os.environ["BROKER_MGMT_URL"].rstrip("/"), "", 0, (user, password))
    deadline = time.monotonic() + 120
    while True:   # the broker may still be starting
        try:
            broker.call("GET", "whoami", ok=(200,))
            break
        except (requests.RequestException, RuntimeError) as exc:
            if time.monotonic() > deadline:
                sys.exit(f"broker setup: management API not reachable: {exc}")
            time.sleep(2)
    restricted = restricted_calls()
    for service in SERVICES:
        broker_users.ensure(broker, service, os.environ[f"SVC_{service.upper()}_PASSWORD"],
                            restricted)
        print(f"broker user {broker_users.user_name(service)}: ready")


if __name__ == "__main__":
    main()
