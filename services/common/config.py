"""Configuration files and platform identity.

Config files are YAML with ``${ENV_VAR:default}`` placeholders, read with
nameko's own parser, so one file serves ``nameko run --config`` and the
operator's ``zhzx`` command alike.
"""
import re
from dataclasses import dataclass

import yaml
from nameko.cli.main import setup_yaml_parser

LEVELS = ("province", "city", "county")


_parser_ready = False


def load_config(path):
    global _parser_ready
    if not _parser_ready:
        setup_yaml_parser()
        _parser_ready = True
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


@dataclass(frozen=True)
class Identity:
    """Who this platform is: its GB/T 2260 code, level and parent."""
    org_code: str
    org_level: str
    parent_org: str | None
    org_name: str = ""

    @classmethod
    def from_config(cls, config):
        code = str(config.get("ORG_CODE", "")).strip()
        level = str(config.get("ORG_LEVEL", "county")).strip()
        parent = config.get("PARENT_ORG")
        parent = str(parent).strip() if parent not in (None, "") else None
        if not re.fullmatch(r"\d{6}", code):
            raise ValueError(f"ORG_CODE must be a 6-digit division code, got {code!r}")
        if level not in LEVELS:
            raise ValueError(f"ORG_LEVEL must be one of {LEVELS}, got {level!r}")
        if parent is not None and not re.fullmatch(r"\d{6}", parent):
            raise ValueError(f"PARENT_ORG must be a 6-digit code, got {parent!r}")
        return cls(code, level, parent, str(config.get("ORG_NAME", "")))
