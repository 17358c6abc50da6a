"""A validator (and evaluator) for the parts of LogQL the dashboards use.

No LogQL parser is on PyPI, so this is a small recursive-descent parser of the subset,
written from Loki's LogQL reference:

    query     := metric | log
    metric    := AGG [grouping] "(" metric ")" [grouping] | RANGE "(" log "[" duration "]" ")"
    grouping  := ("by" | "without") "(" label ("," label)* ")"
    log       := "{" matcher ("," matcher)* "}" stage*
    matcher   := label ("=" | "!=" | "=~" | "!~") string
    stage     := ("|=" | "!=" | "|~" | "!~") string | "|" "json" | "|" "logfmt"
               | "|" label ("=" | "!=" | "=~" | "!~") string
    string    := "..." (Go escapes) | `...` (raw)

Loki's own rules it enforces: a stream selector needs at least one matcher that cannot
match the empty string; regexes must compile; a range aggregation needs a range.
Queries are checked after Grafana's variables are substituted (queries.substitute).

:func:`LogQuery.keeps` evaluates the log part against a stream and a line (stream
matchers are anchored regexes, line filters search), so tests can prove a panel's
selector really selects lines the hub shipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "count"})
RANGE_AGGREGATIONS = frozenset({"count_over_time", "rate", "bytes_over_time", "bytes_rate"})
PARSERS = frozenset({"json", "logfmt"})
_DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<op>\|=|\|~|!=|!~|=~|=|\||\{|\}|\(|\)|\[|\]|,)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<duration>\d+[a-z0-9]*)
""", re.X)


class LogQLError(ValueError):
    """A query outside the subset, or one Loki would refuse."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, actual: str) -> bool:
        if self.op in ("=", "!="):
            return (actual == self.value) == (self.op == "=")
        return (re.fullmatch(self.value, actual) is not None) == (self.op == "=~")

    def empty_compatible(self) -> bool:
        return self.matches("")


@dataclass(frozen=True)
class Stage:
    kind: str  # "line", "parser", "label"
    op: str = ""
    value: str = ""
    label: str = ""


@dataclass(frozen=True)
class LogQuery:
    selector: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()

    def keeps(self, stream: dict[str, str], line: str) -> bool:
        """Whether Loki would return ``line`` of ``stream`` for this query."""
        if not all(m.matches(stream.get(m.label, "")) for m in self.selector):
            return False
        labels = dict(stream)
        for st in self.stages:
            if st.kind == "line":
                found = (st.value in line) if st.op in ("|=", "!=") else re.search(st.value, line) is not None
                if found != (st.op in ("|=", "|~")):
                    return False
            elif st.kind == "parser" and st.op == "json":
                try:
                    obj = json.loads(line)
                except ValueError:
                    labels["__error__"] = "JSONParserErr"
                    continue
                if isinstance(obj, dict):
                    labels.update({k: str(v) for k, v in obj.items() if not isinstance(v, dict | list)})
            elif st.kind == "label" and not Matcher(st.label, st.op, st.value).matches(labels.get(st.label, "")):
                return False
        return True


@dataclass(frozen=True)
class Query:
    """A parsed query: the log query inside, and the aggregations around it."""

    log: LogQuery
    functions: tuple[str, ...] = ()  # outermost first
    range: str | None = None
    grouping: tuple[str, ...] = field(default=())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise LogQLError(f"unexpected {text[pos:pos + 10]!r} at {pos} in {text!r}")
            if m.lastgroup != "space":
                assert m.lastgroup is not None
                self.tokens.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("end", "", len(self.text))

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        k, v, pos = self.peek()
        if (kind is not None and k != kind) or (value is not None and v != value):
            want = value or kind
            raise LogQLError(f"expected {want} at {pos}, found {v or 'the end'!r} in {self.text!r}")
        self.i += 1
        return v

    def string(self) -> str:
        raw = self.take("string")
        if raw.startswith("`"):
            return raw[1:-1]
        try:
            value: str = json.loads(raw)  # Go and JSON agree on the escapes used here
        except ValueError:
            raise LogQLError(f"bad string {raw} in {self.text!r}") from None
        return value

    def query(self) -> Query:
        q = self.metric_or_log()
        if self.peek()[0] != "end":
            raise LogQLError(f"unexpected {self.peek()[1]!r} at {self.peek()[2]} in {self.text!r}")
        return q

    def metric_or_log(self) -> Query:
        kind, value, _ = self.peek()
        if kind == "op" and value == "{":
            return Query(self.log())
        if kind == "ident" and value in AGGREGATIONS:
            self.take()
            grouping = self.grouping()
            self.take("op", "(")
            inner = self.metric_or_log()
            if not inner.functions:
                raise LogQLError(f"{value}() aggregates a metric query, not log lines, in {self.text!r}")
            self.take("op", ")")
            grouping = grouping or self.grouping()
            return Query(inner.log, (value, *inner.functions), inner.range, grouping)
        if kind == "ident" and value in RANGE_AGGREGATIONS:
            self.take()
            self.take("op", "(")
            log = self.log()
            self.take("op", "[")
            duration = self.take("duration")
            if not _DURATION.fullmatch(duration):
                raise LogQLError(f"bad range [{duration}] in {self.text!r}")
            self.take("op", "]")
            self.take("op", ")")
            return Query(log, (value,), duration)
        raise LogQLError(f"expected a stream selector or an aggregation, found {value or 'the end'!r} "
                         f"in {self.text!r}")

    def grouping(self) -> tuple[str, ...]:
        if self.peek()[1] not in ("by", "without"):
            return ()
        self.take()
        self.take("op", "(")
        labels = [self.take("ident")]
        while self.peek()[1] == ",":
            self.take()
            labels.append(self.take("ident"))
        self.take("op", ")")
        return tuple(labels)

    def matcher(self) -> Matcher:
        label = self.take("ident")
        op = self.take("op")
        if op not in ("=", "!=", "=~", "!~"):
            raise LogQLError(f"bad matcher operator {op!r} after {label} in {self.text!r}")
        m = Matcher(label, op, self.string())
        if op in ("=~", "!~"):
            _compile(m.value, self.text)
        return m

    def log(self) -> LogQuery:
        self.take("op", "{")
        matchers = [self.matcher()]
        while self.peek()[1] == ",":
            self.take()
            matchers.append(self.matcher())
        self.take("op", "}")
        if all(m.empty_compatible() for m in matchers):
            raise LogQLError(f"{self.text!r}: Loki needs a matcher that does not match the empty "
                             "string (e.g. machine=~\".+\")")
        stages: list[Stage] = []
        while self.peek()[1] in ("|=", "|~", "!=", "!~", "|"):
            op = self.take()
            if op != "|":
                value = self.string()
                if op in ("|~", "!~"):
                    _compile(value, self.text)
                stages.append(Stage("line", op, value))
            elif self.peek()[1] in PARSERS:
                stages.append(Stage("parser", self.take()))
            else:
                m = self.matcher()
                stages.append(Stage("label", m.op, m.value, m.label))
        return LogQuery(tuple(matchers), tuple(stages))


def _compile(pattern: str, text: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise LogQLError(f"bad regex {pattern!r} in {text!r}: {exc}") from None


def parse(text: str) -> Query:
    """Parse (and so validate) a LogQL query of the subset; raises :class:`LogQLError`."""
    return _Parser(text).query()
