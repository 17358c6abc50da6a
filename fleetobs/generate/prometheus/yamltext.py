"""Deterministic YAML for the generated configuration files: keys in the order written,
no anchors, long lines kept whole, the "do not edit" header on top."""

from __future__ import annotations

from typing import Any

import yaml

from fleetobs.generate.build import HEADER


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Any, comment: str = "") -> str:
    """``document`` as YAML text with the generated-file header (and ``comment`` lines)."""
    lines = [f"# {HEADER}"] + [f"# {line}".rstrip() for line in comment.strip().splitlines()]
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=100_000, allow_unicode=True)
    return "\n".join(lines) + "\n" + body
