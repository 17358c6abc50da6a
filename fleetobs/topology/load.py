"""Read a topology YAML file into the typed model, with precise errors.

Every error names the file, the line, the path inside the document
(``agents[12].port``) and what is wrong, so a human editing the file can fix it
without reading a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fleetobs.errors import InputError
from fleetobs.topology import cache
from fleetobs.topology.model import Topology

DEFAULT_TOPOLOGY_RESOURCE = "fleet.yaml"
#: libyaml's parser when PyYAML was built with it (3-4x faster at 10,000 agents), else
#: the pure-Python one; both construct the same safe types.
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Loc = tuple[str | int, ...]

_REF_ERROR = re.compile(r"^(?P<section>machines|groups|agents)\[(?P<index>\d+)\] \([^)]*\): (?P<rest>.*)$", re.S)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, located."""

    source: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class TopologyError(InputError):
    """The topology could not be loaded. ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = str(self.problems[0]) if self.problems else "invalid topology"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def line_index(text: str) -> dict[Loc, int]:
    """Map each path in a YAML document to its 1-based line, best effort."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    index: dict[Loc, int] = {}

    def walk(n: yaml.Node, loc: Loc) -> None:
        index[loc] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                index[(*loc, key)] = k.start_mark.line + 1
                walk(v, (*loc, key))
                index[(*loc, key)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*loc, i))

    if node is not None:
        walk(node, ())
    return index


def _nearest_line(index: Mapping[Loc, int], loc: Loc) -> int | None:
    for cut in range(len(loc), -1, -1):
        line = index.get(loc[:cut])
        if line is not None:
            return line
    return None


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` whose errors are a located :class:`TopologyError`."""
    try:
        return yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 - a safe loader (C or Python)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or "malformed YAML"
        raise TopologyError([Problem(source, "", f"malformed YAML: {what}", line)]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(source, "", f"malformed YAML: {exc}")]) from None


def _agent_name(data: Any, loc: Loc) -> str:
    """For ``agents[3].port`` return ' (NLUAgent)' so the message names the agent."""
    if len(loc) >= 2 and loc[0] in ("agents", "groups", "machines") and isinstance(loc[1], int):
        try:
            name = data[loc[0]][loc[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""
        return f" ({name})" if isinstance(name, str) else ""
    return ""


def _validation_problems(exc: ValidationError, data: Any, text: str, source: str) -> Iterator[Problem]:
    index = line_index(text)
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            msg = f"required key {loc[-1]!r} is missing"
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg} (got {err['input']!r})"
        if msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        ref = _REF_ERROR.match(msg) if not loc else None
        if ref:
            # Cross-reference errors come from the whole-document validator: locate them.
            loc = (ref["section"], int(ref["index"]))
            msg = ref["rest"]
        path = format_loc(loc) + _agent_name(data, loc)
        yield Problem(source, path, msg, _nearest_line(index, loc))


def topology_from_text(text: str, source: str = "<topology>", *,
                       cache_dir: Path | None = None) -> Topology:
    """Parse and validate ``text``; with ``cache_dir``, through the parsed-document cache
    (fleetobs.topology.cache), which turns a 10,000-agent parse into a JSON read."""
    key = cache.digest(text) if cache_dir is not None else ""
    if cache_dir is not None:
        cached = cache.cached_document(cache_dir, key)
        if isinstance(cached, dict):
            try:
                return Topology.model_validate(cached)
            except ValidationError:
                pass  # not what a parse gives (e.g. another fleetobs version): parse
    data = parse_yaml(text, source)
    if data is None:
        raise TopologyError(
            [Problem(source, "", "the file is empty: expected a mapping with 'machines', 'groups' and 'agents'")]
        )
    if not isinstance(data, dict):
        raise TopologyError(
            [Problem(source, "", f"expected a mapping at the top level, got {type(data).__name__}", 1)]
        )
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(list(_validation_problems(exc, data, text, source))) from None
    if cache_dir is not None:
        cache.store_document(cache_dir, key, data)
    return topology


def load_topology(path: Path | str | None = None, *, cache_dir: Path | None = None) -> Topology:
    """Load a topology file; ``None`` loads the committed default (the real fleet).

    ``cache_dir``: keep the parsed document there (the hub passes its data dir).
    """
    if path is None:
        return topology_from_text(default_topology_text(), "<default topology>", cache_dir=cache_dir)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError([Problem(str(p), "", "no such file")]) from None
    except IsADirectoryError:
        raise TopologyError([Problem(str(p), "", "is a directory, expected a YAML file")]) from None
    except UnicodeDecodeError as exc:
        raise TopologyError([Problem(str(p), "", f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise TopologyError([Problem(str(p), "", f"cannot read: {exc.strerror}")]) from None
    return topology_from_text(text, str(p), cache_dir=cache_dir)


def default_topology_text() -> str:
    return resources.files("fleetobs.topology").joinpath("data", DEFAULT_TOPOLOGY_RESOURCE).read_text(
        encoding="utf-8"
    )


def default_topology_path() -> Path:
    """Filesystem path of the committed default, for messages and docs."""
    return Path(str(resources.files("fleetobs.topology").joinpath("data", DEFAULT_TOPOLOGY_RESOURCE)))
