"""The bundle's variables: every ``${NAME:-default}`` a compose file uses, with its documentation.

Services reference variables through :meth:`Variables.ref`, which records the default and
the explanation; ``.env.example`` is written from the same record, so the documented
defaults cannot drift from the ones inside ``docker-compose.yml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    doc: str
    section: str


@dataclass
class Variables:
    items: dict[str, Variable] = field(default_factory=dict)
    section: str = "general"

    def ref(self, name: str, default: str | int | float, doc: str) -> str:
        """``${NAME:-default}``; the same name must always carry the same default."""
        if not _NAME.match(name):
            raise ValueError(f"variable name {name!r} must be UPPER_SNAKE_CASE")
        text = str(default)
        if "$" in text or "}" in text:
            raise ValueError(f"{name}: default {text!r} cannot contain '$' or '}}' (compose 1.x does not nest)")
        known = self.items.get(name)
        if known is not None and known.default != text:
            raise ValueError(f"{name}: default {text!r} differs from the earlier {known.default!r}")
        if known is None:
            self.items[name] = Variable(name, text, doc, self.section)
        return "${" + name + ":-" + text + "}"

    def env_example(self, header: str) -> str:
        lines = [f"# {line}" if line else "#" for line in header.splitlines()]
        section = None
        for v in self.items.values():
            if v.section != section:
                section = v.section
                lines += ["", f"# --- {section} ---"]
            lines.append(f"# {v.doc}")
            lines.append(f"{v.name}={v.default}")
        return "\n".join(lines) + "\n"
