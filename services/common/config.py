"""Configuration files and platform identity.

Config files are YAML with ``${ENV_VAR:default}`` placeholders, read with
nameko's own parser, so one file serves ``nameko run --config`` and the
operator's ``zhzx`` command alike.
"""
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

LEVELS = ("province", "city", "county")
DATA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "config"


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
    children: tuple = ()   # ((code, name), ...): the platforms linked below this one
    parent_name: str = ""

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
        children = []
        for part in str(config.get("CHILD_ORGS") or "").split(","):
            child, _, name = part.strip().partition("=")
            if not child:
                continue
            if not re.fullmatch(r"\d{6}", child):
                raise ValueError(f"CHILD_ORGS: {child!r} is not a 6-digit code")
            children.append((child, name.strip() or child))
        return cls(code, level, parent, str(config.get("ORG_NAME", "")), tuple(children),
                   str(config.get("PARENT_ORG_NAME") or ""))

    @property
    def child_names(self):
        return dict(self.children)

    def org_name_of(self, code):
        """A linked platform's name as this one knows it (its code if unknown)."""
        names = dict(self.children)
        if self.parent_org and self.parent_name:
            names[self.parent_org] = self.parent_name
        return names.get(code) or code

    @property
    def uplink(self):
        """The parent a county's linked events go up to over federation;
        None for a city (it reaches the province through the adapter)."""
        return self.parent_org if self.org_level == "county" else None


def platform_data(kind, org, config):
    """Per-platform data kept beside the shared settings, e.g. the places of
    org 140428 in ``<PLATFORM_DATA_DIR>/places/140428.yaml``; None when the
    platform has no such file."""
    return _data_file(Path(config.get("PLATFORM_DATA_DIR") or DATA_DIR) / kind / f"{org}.yaml")


@functools.lru_cache(maxsize=64)
def _data_file(path):
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)
