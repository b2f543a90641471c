"""The filter expression language of the serving API.

A filter is a boolean expression over an item's attributes, validated against
the tenant's domain item schema before anything runs::

    category in ["shoes", "bags"] and price < $max_price and in_stock = true
    not (brand = "acme") or tags contains "sale"

Grammar (keywords are case-insensitive)::

    expr     := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | "(" expr ")" | test
    test     := NAME OP value | NAME ["not"] "in" "[" value ("," value)* "]"
              | NAME "contains" value
    OP       := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
    value    := "string" | 'string' | number | true | false | $param

``user.segment`` is the one name that is not an item attribute: a test of
the *requesting user's* segment membership (``user.segment = "big-spenders"``,
``!=``, ``in [...]``, ``not in [...]``), the same for every item, so
``user.segment = "vip" or price < 100`` shows VIPs everything and others only
items under 100 (docs/analytics.md, "Segments in recommendations").

``$param`` takes its value from the request's parameters (``filter_params``),
so client code never splices user input into the expression. An item that
lacks the attribute fails every test on it (``not`` can turn that around).

Why a small hand-written parser instead of ``eval`` or a query library: the
expression comes from clients, must only reach declared, non-sensitive
attributes, and each error has to name what is wrong and where.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from domains.base import Field, parse_datetime
from platform_core.common.errors import ValidationFailed
from platform_core.serving.errors import ServingError

MAX_EXPRESSION_LENGTH = 2000
MAX_LIST_VALUES = 200

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<param>\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
  | (?P<op><=|>=|!=|==|=|<|>)
  | (?P<punct>[()\[\],])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "contains", "true", "false"}
_ORDERED_TYPES = {"int", "float", "datetime"}
USER_SEGMENT = "user.segment"
#: ``test(ref)`` → whether the requesting user is in segment ``ref`` (400 for an unknown one).
SegmentTest = Callable[[str], bool]


@dataclass(frozen=True)
class _Tok:
    kind: str  # string, number, param, name, keyword, op, punct, end
    text: str
    pos: int
    value: Any = None


@dataclass(frozen=True)
class ItemFilter:
    """A validated filter: ``matches(attributes)`` says whether an item passes."""

    expression: str
    attributes: frozenset[str]
    predicate: Predicate
    #: (segment, the user's membership) of each ``user.segment`` term: the answer depends on them.
    user_segments: tuple[tuple[str, bool], ...] = ()

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        return self.predicate(attributes)


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid filter: {message}", code=ServingError.INVALID_FILTER, fields={"filter": [message]}
    )


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _fail(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "string":
            tokens.append(_Tok("string", raw, pos, re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif kind == "number":
            num: float | int = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(_Tok("number", raw, pos, num))
        elif kind == "name" and raw.lower() in _KEYWORDS:
            tokens.append(_Tok("keyword", raw.lower(), pos))
        elif kind != "ws":
            tokens.append(_Tok(kind, raw, pos))
        pos = m.end()
    tokens.append(_Tok("end", "end of expression", len(text)))
    return tokens


class _Parser:
    def __init__(
        self,
        text: str,
        schema: Sequence[Field],
        params: Mapping[str, Any],
        domain: str,
        segment_test: SegmentTest | None = None,
    ) -> None:
        self.segment_test = segment_test
        self.user_segments: dict[str, bool] = {}
        self.tokens = _tokenize(text)
        self.i = 0
        self.fields = {f.name: f for f in schema}
        self.params = params
        self.domain = domain
        self.used: set[str] = set()
        # Each '(' and 'not' recurses: 400 nested parentheses were a RecursionError (a 500).
        self.depth = 0
        self.max_depth: int = settings.FILTER_MAX_DEPTH

    # ---------------------------------------------------------------- cursor
    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, text: str | None = None, what: str = "") -> _Tok:
        tok = self.take()
        if tok.kind != kind or (text is not None and tok.text != text):
            raise _fail(f"expected {what or text or kind} at position {tok.pos}, found {tok.text!r}")
        return tok

    def at_keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "keyword" and tok.text == word

    # ---------------------------------------------------------------- grammar
    def parse(self) -> Predicate:
        if self.peek().kind == "end":
            raise _fail("the expression is empty")
        pred = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise _fail(f"unexpected {tok.text!r} at position {tok.pos}; expected 'and', 'or' or the end")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at_keyword("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda a: any(p(a) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.at_keyword("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda a: all(p(a) for p in parts))

    def not_expr(self) -> Predicate:
        if self.at_keyword("not"):
            self.nest(self.take())
            inner = self.not_expr()
            self.depth -= 1
            return lambda a: not inner(a)
        if self.peek().kind == "punct" and self.peek().text == "(":
            self.nest(self.take())
            inner = self.or_expr()
            self.expect("punct", ")", "')'")
            self.depth -= 1
            return inner
        return self.test()

    def nest(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise _fail(
                f"must not nest deeper than {self.max_depth} levels of parentheses and 'not' "
                f"(FILTER_MAX_DEPTH); level {self.depth} at position {tok.pos}"
            )

    def test(self) -> Predicate:
        tok = self.take()
        if tok.kind != "name":
            raise _fail(f"expected an attribute name at position {tok.pos}, found {tok.text!r}")
        if tok.text == USER_SEGMENT:
            return self.segment_term(tok)
        spec = self.field(tok)
        nxt = self.peek()
        if nxt.kind == "op":
            self.take()
            return self.comparison(spec, "==" if nxt.text == "=" else nxt.text, self.value(spec))
        negate = False
        if self.at_keyword("not"):
            self.take()
            negate = True
            if not self.at_keyword("in"):
                raise _fail(f"expected 'in' after 'not' at position {self.peek().pos}")
        if self.at_keyword("in"):
            self.take()
            return self.membership(spec, negate)
        if self.at_keyword("contains"):
            self.take()
            return self.contains(spec)
        raise _fail(
            f"expected an operator (=, !=, <, <=, >, >=, in, contains) after {spec.name!r} "
            f"at position {nxt.pos}, found {nxt.text!r}"
        )

    def segment_term(self, tok: _Tok) -> Any:
        """``user.segment = "s"`` (or ``!=``, ``in``, ``not in``): a constant for this request."""
        if self.segment_test is None:
            raise _fail(
                f"{USER_SEGMENT} at position {tok.pos} needs a requesting user: it is available in "
                "recommendations and in similar items with user_id"
            )
        segment = Field(name=USER_SEGMENT, type="string")
        nxt = self.take()
        negate = nxt.kind == "keyword" and nxt.text == "not"
        if negate:
            nxt = self.take()
        if nxt.kind == "op" and nxt.text in ("=", "==", "!=") and not negate:
            refs, negate = [self.value(segment)], nxt.text == "!="
        elif nxt.kind == "keyword" and nxt.text == "in":
            refs = self.list_values(segment)
        else:
            raise _fail(f"{USER_SEGMENT} takes =, !=, in or not in; found {nxt.text!r} at position {nxt.pos}")
        for ref in refs:
            if ref not in self.user_segments:
                self.user_segments[ref] = self.segment_test(ref)
        answer = any(self.user_segments[r] for r in refs) != negate
        return lambda a: answer

    # ---------------------------------------------------------------- checks
    def field(self, tok: _Tok) -> Field:
        spec = self.fields.get(tok.text)
        if spec is None:
            known = ", ".join(sorted(n for n, f in self.fields.items() if not f.sensitive)) or "none"
            raise _fail(
                f"attribute {tok.text!r} is not declared in the item schema of domain "
                f"{self.domain!r} (declared: {known})"
            )
        if spec.sensitive:
            raise _fail(f"attribute {tok.text!r} is sensitive and cannot be filtered on")
        self.used.add(spec.name)
        return spec

    def value(self, spec: Field) -> Any:
        tok = self.take()
        if tok.kind == "param":
            name = tok.text[1:]
            if name not in self.params:
                raise _fail(f"parameter ${name} at position {tok.pos} has no value in filter_params")
            raw = self.params[name]
            where = f"parameter ${name}"
        elif tok.kind in ("string", "number"):
            raw, where = tok.value, f"value {tok.text} at position {tok.pos}"
        elif tok.kind == "keyword" and tok.text in ("true", "false"):
            raw, where = tok.text == "true", f"value {tok.text} at position {tok.pos}"
        else:
            raise _fail(f"expected a value at position {tok.pos}, found {tok.text!r}")
        return _coerce(spec, raw, where)

    def comparison(self, spec: Field, op: str, value: Any) -> Predicate:
        if op not in ("==", "!=") and spec.type not in _ORDERED_TYPES:
            raise _fail(f"operator {op!r} needs a number or datetime attribute; {spec.name!r} is {spec.type}")
        if spec.type == "list":
            raise _fail(f"{spec.name!r} is a list: use 'contains'")
        name = spec.name
        get = _getter(spec)
        cmp = _OPS[op]

        def pred(attrs: Mapping[str, Any]) -> bool:
            have = get(attrs.get(name))
            if have is None:
                return False
            try:
                return bool(cmp(have, value))
            except TypeError:  # a stored value of another type never matches
                return False

        return pred

    def list_values(self, spec: Field) -> list[Any]:
        """``[v, …]`` after ``in``: at most MAX_LIST_VALUES values of the attribute's type."""
        if spec.type == "list":
            raise _fail(f"{spec.name!r} is a list: use 'contains'")
        self.expect("punct", "[", "'[' after 'in'")
        values: list[Any] = []
        if not (self.peek().kind == "punct" and self.peek().text == "]"):
            values.append(self.value(spec))
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
                values.append(self.value(spec))
        self.expect("punct", "]", "',' or ']'")
        if len(values) > MAX_LIST_VALUES:
            raise _fail(f"a list may hold at most {MAX_LIST_VALUES} values")
        return values

    def membership(self, spec: Field, negate: bool) -> Predicate:
        values = self.list_values(spec)
        name, get = spec.name, _getter(spec)
        wanted = set(values) if all(isinstance(v, str | int | float | bool) for v in values) else values

        def pred(attrs: Mapping[str, Any]) -> bool:
            have = get(attrs.get(name))
            if have is None:
                return False
            try:
                return (have in wanted) != negate
            except TypeError:
                return False

        return pred

    def contains(self, spec: Field) -> Predicate:
        if spec.type != "list":
            raise _fail(f"'contains' needs a list attribute; {spec.name!r} is {spec.type}")
        element = Field(name=spec.name, type="string", choices=spec.choices)
        value = self.value(element) if spec.choices else self.value_any()
        name = spec.name

        def pred(attrs: Mapping[str, Any]) -> bool:
            have = attrs.get(name)
            return isinstance(have, list) and value in have

        return pred

    def value_any(self) -> Any:
        tok = self.take()
        if tok.kind == "param":
            name = tok.text[1:]
            if name not in self.params:
                raise _fail(f"parameter ${name} at position {tok.pos} has no value in filter_params")
            return self.params[name]
        if tok.kind in ("string", "number"):
            return tok.value
        if tok.kind == "keyword" and tok.text in ("true", "false"):
            return tok.text == "true"
        raise _fail(f"expected a value at position {tok.pos}, found {tok.text!r}")


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _getter(spec: Field) -> Callable[[Any], Any]:
    """How a stored attribute value is read for comparison (datetimes are stored as ISO strings)."""
    if spec.type == "datetime":
        return lambda v: parse_datetime(v) if v is not None else None
    if spec.type in ("int", "float"):
        return lambda v: v if isinstance(v, int | float) and not isinstance(v, bool) else None
    return lambda v: v


def _coerce(spec: Field, raw: Any, where: str) -> Any:
    """Check a literal or parameter against the attribute's declared type."""
    t = spec.type
    if t in ("int", "float"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise _fail(f"{where}: {spec.name!r} is {t}, so the value must be a number")
        return raw
    if t == "bool":
        if not isinstance(raw, bool):
            raise _fail(f"{where}: {spec.name!r} is bool, so the value must be true or false")
        return raw
    if t == "datetime":
        parsed = parse_datetime(raw) if isinstance(raw, str | datetime) else None
        if parsed is None:
            raise _fail(
                f"{where}: {spec.name!r} is a datetime, so the value must be ISO 8601 with a time zone"
            )
        return parsed
    if t == "choice" or (t == "string" and spec.choices):
        if raw not in spec.choices:
            raise _fail(f"{where}: {raw!r} is not one of {list(spec.choices)!r} for {spec.name!r}")
        return raw
    if t == "string" and not isinstance(raw, str):
        raise _fail(f"{where}: {spec.name!r} is a string, so the value must be quoted")
    return raw


def filter_parse(
    *,
    expression: str,
    schema: Sequence[Field],
    params: Mapping[str, Any] | None = None,
    domain: str = "",
    segment_test: SegmentTest | None = None,
) -> ItemFilter:
    """Parse and validate a filter expression against an item schema.

    Args:
        expression: the client's expression.
        schema: the domain's ``item_schema``.
        params: values for ``$name`` placeholders.
        domain: the domain id, for messages.
        segment_test: the requesting user's segment membership; None refuses ``user.segment``.

    Raises:
        ValidationFailed: code ``invalid_filter``; the message names the problem and its position.
    """
    if not isinstance(expression, str):
        raise _fail("must be a string")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise _fail(f"must be at most {MAX_EXPRESSION_LENGTH} characters")
    if params is not None and not isinstance(params, Mapping):
        raise ValidationFailed(
            "Invalid filter_params: must be a JSON object",
            code=ServingError.INVALID_FILTER,
            fields={"filter_params": ["must be a JSON object"]},
        )
    parser = _Parser(expression, schema, params or {}, domain, segment_test)
    predicate = parser.parse()
    return ItemFilter(
        expression=expression,
        attributes=frozenset(parser.used),
        predicate=predicate,
        user_segments=tuple(sorted(parser.user_segments.items())),
    )
