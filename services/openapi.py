"""The services' OpenAPI documents, written to ``docs/openapi/<service>.json``.

    python -m services.openapi          # rewrite the documents
    python -m services.openapi --check  # exit 1 when the committed ones differ

Each running service serves the same document at ``/openapi.json`` (built
from its ``@api`` declarations, services/common/openapi.py) and Swagger UI at
``/docs``. The committed copies are for readers and for clients generated
without a running platform.
"""
import json
import sys
from importlib import import_module
from pathlib import Path

from services import docgen
from services.common.service import service_document

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "openapi"
SERVICES = (("services.members.service", "MembersService"),
            ("services.proposals.service", "ProposalsService"),
            ("services.liaison.service", "LiaisonService"),
            ("services.notify.service", "NotifyService"),
            ("services.provincial.service", "ProvincialService"))


def service_classes():
    return [getattr(import_module(module), name) for module, name in SERVICES]


def render():
    return {OUT / f"{cls.name}.json": json.dumps(service_document(cls), ensure_ascii=False,
                                                 indent=1, sort_keys=True) + "\n"
            for cls in service_classes()}


def main(argv=None):
    return docgen.sync(render(), argv, __doc__.splitlines()[0], "python -m services.openapi")


if __name__ == "__main__":
    sys.exit(main())
