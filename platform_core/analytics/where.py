"""The serving filter language compiled to SQL, for funnel steps and trending.

The serving parser (``platform_core.serving.filters``) checks names, types
and values and builds Python predicates; here the same parser, with its
tokenizer, name checks and value coercion, builds a SQL condition instead,
so a step's ``where`` runs in the database over every event once, never as a
Python loop over events. Semantics match the Python evaluator: a missing
attribute, a JSON null or a value of another type fails every test (and
``not`` turns that around), so each test is wrapped in ``COALESCE(…, FALSE)``.

Names: item attributes by their name (as in serving), event-context fields
of the step's event type as ``context_<name>``. Datetime attributes are
refused (stored as ISO text, they do not compare correctly in SQL).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from domains.base import Field
from platform_core.analytics.sql import Dialect
from platform_core.common.errors import ValidationFailed
from platform_core.serving import filters

MAX_DEPTH = 16  # nesting of not/parentheses: bounds the parser's recursion
CONTEXT_PREFIX = "context_"


class Params:
    """Named parameters of one query; fragments refer to them as ``%(name)s``."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        _bindable(value)
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


@dataclasses.dataclass(frozen=True)
class _Target:
    column: str  # e.g. "i.attributes" or "e.context"
    key: str  # the JSON key


class _Compiler(filters._Parser):
    """The serving parser with SQL fragments in place of predicates (same grammar, same checks)."""

    def __init__(
        self,
        text: str,
        *,
        targets: Mapping[str, tuple[Field, _Target]],
        params: Mapping[str, Any],
        bag: Params,
        sql: Dialect,
        domain: str,
    ) -> None:
        super().__init__(text, [f for f, _ in targets.values()], params, domain)
        self.targets = {name: t for name, (_, t) in targets.items()}
        self.bag = bag
        self.sql = sql
        self.depth = 0

    def or_expr(self) -> Any:
        parts = [self.and_expr()]
        while self.at_keyword("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> Any:
        parts = [self.not_expr()]
        while self.at_keyword("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_expr(self) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise filters._fail(f"nesting deeper than {MAX_DEPTH} levels at position {self.peek().pos}")
        try:
            if self.at_keyword("not"):
                self.take()
                return f"(NOT {self.not_expr()})"
            if self.peek().kind == "punct" and self.peek().text == "(":
                self.take()
                inner = self.or_expr()
                self.expect("punct", ")", "')'")
                return inner
            return self.test()
        finally:
            self.depth -= 1

    # ------------------------------------------------------------ the tests
    def field(self, tok: Any) -> Field:
        spec = super().field(tok)
        if spec.type == "datetime":
            raise filters._fail(f"attribute {spec.name!r} is a datetime: not supported in analytics filters")
        return spec

    def comparison(self, spec: Field, op: str, value: Any) -> Any:
        if spec.type == "list":
            raise filters._fail(f"{spec.name!r} is a list: use 'contains'")
        if op not in ("==", "!="):
            if spec.type not in ("int", "float"):
                raise filters._fail(f"operator {op!r} needs a number attribute; {spec.name!r} is {spec.type}")
            return self._wrap(self._number(spec, op, value))
        if op == "==":
            return self._wrap(self._equal(spec, value))
        return self._wrap(f"({self._present(spec)} AND NOT {self._equal(spec, value)})")

    def membership(self, spec: Field, negate: bool) -> Any:
        values = self.list_values(spec)
        anyof = "(" + " OR ".join(self._equal(spec, v) for v in values) + ")" if values else "FALSE"
        if negate:
            return self._wrap(f"({self._present(spec)} AND NOT {anyof})")
        return self._wrap(anyof)

    def contains(self, spec: Field) -> Any:
        if spec.type != "list":
            raise filters._fail(f"'contains' needs a list attribute; {spec.name!r} is {spec.type}")
        element = Field(name=spec.name, type="string", choices=spec.choices)
        value = self.value(element) if spec.choices else self.value_any()
        if not isinstance(value, str | int | float | bool):
            raise filters._fail(f"'contains' on {spec.name!r} needs a string, number or boolean")
        _bindable(value)
        t = self.targets[spec.name]
        key = self.bag.bind(t.key)
        if self.sql.vendor == "postgresql":
            test = f"(jsonb_typeof({t.column} -> {key}) = 'array' AND {t.column} -> {key} @> {self.bag.bind(json.dumps([value]))}::jsonb)"
        else:
            path = f"'$.' || {key}"
            test = (
                f"(json_type({t.column}, {path}) = 'array' AND EXISTS (SELECT 1 FROM json_each({t.column}, {path}) j "
                f"WHERE {_sqlite_typed('j.type', value)} AND j.value = {self.bag.bind(value)}))"
            )
        return self._wrap(test)

    # ------------------------------------------------------------ fragments
    def _wrap(self, test: str) -> str:
        return f"COALESCE({test}, FALSE)"

    def _present(self, spec: Field) -> str:
        """Readable for a test: not null, and a number for a number attribute (as serving's getter)."""
        t = self.targets[spec.name]
        key = self.bag.bind(t.key)
        number = spec.type in ("int", "float")
        if self.sql.vendor == "postgresql":
            kind = "= 'number'" if number else "<> 'null'"
            return f"(jsonb_typeof({t.column} -> {key}) {kind})"
        kinds = "IN ('integer', 'real')" if number else "<> 'null'"
        return f"(json_type({t.column}, '$.' || {key}) {kinds})"

    def _equal(self, spec: Field, value: Any) -> str:
        """Present, of the value's JSON type, and equal to it."""
        _bindable(value)
        t = self.targets[spec.name]
        key = self.bag.bind(t.key)
        if self.sql.vendor == "postgresql":
            # jsonb equality is typed ('5' <> '"5"') and never fails on a stored value.
            return f"({t.column} -> {key} = {self.bag.bind(json.dumps(value))}::jsonb)"
        path = f"'$.' || {key}"
        typed = _sqlite_typed(f"json_type({t.column}, {path})", value)
        if isinstance(value, bool):
            return f"({typed})"
        return f"({typed} AND json_extract({t.column}, {path}) = {self.bag.bind(value)})"

    def _number(self, spec: Field, op: str, value: Any) -> str:
        _bindable(value)
        t = self.targets[spec.name]
        key = self.bag.bind(t.key)
        sql_op = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}[op]
        if self.sql.vendor == "postgresql":
            return (
                f"(jsonb_typeof({t.column} -> {key}) = 'number' AND "
                f"{t.column} -> {key} {sql_op} {self.bag.bind(json.dumps(value))}::jsonb)"
            )
        path = f"'$.' || {key}"
        return (
            f"(json_type({t.column}, {path}) IN ('integer', 'real') AND "
            f"json_extract({t.column}, {path}) {sql_op} {self.bag.bind(value)})"
        )


def _bindable(value: Any) -> None:
    """Refuse (400) what a database would refuse with an error (a 500): NUL or unencodable text,
    non-finite numbers, integers past 64 bits."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise filters._fail("a value is not valid UTF-8 text") from None
        if "\x00" in value or "\\u0000" in value:  # the second: in JSON text bound for jsonb
            raise filters._fail("a value holds a NUL character")
    elif isinstance(value, float) and not math.isfinite(value):
        raise filters._fail("a number must be finite")
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise filters._fail("an integer must fit in 64 bits")


def _sqlite_typed(type_expr: str, value: Any) -> str:
    """SQLite's JSON type names for a Python value (booleans are their own types)."""
    if isinstance(value, bool):
        return f"{type_expr} = '{'true' if value else 'false'}'"
    if isinstance(value, int | float):
        return f"{type_expr} IN ('integer', 'real')"
    return f"{type_expr} = 'text'"


def where_compile(
    *,
    expression: str,
    item_schema: Sequence[Field],
    context_schema: Sequence[Field] = (),
    params: Mapping[str, Any] | None,
    bag: Params,
    sql: Dialect,
    domain: str,
    item_column: str = "i.attributes",
    context_column: str = "e.context",
    field: str = "filter",
) -> str:
    """A SQL condition for ``expression``; its parameters go into ``bag``.

    Raises:
        ValidationFailed: the serving parser's message, under ``field``.
    """
    targets: dict[str, tuple[Field, _Target]] = {
        f.name: (f, _Target(item_column, f.name)) for f in item_schema
    }
    for f in context_schema:
        name = CONTEXT_PREFIX + f.name
        targets[name] = (dataclasses.replace(f, name=name), _Target(context_column, f.name))
    if not isinstance(expression, str):
        raise _named(filters._fail("must be a string"), field)
    if len(expression) > filters.MAX_EXPRESSION_LENGTH:
        raise _named(filters._fail(f"must be at most {filters.MAX_EXPRESSION_LENGTH} characters"), field)
    try:
        return _Compiler(
            expression, targets=targets, params=params or {}, bag=bag, sql=sql, domain=domain
        ).parse()
    except ValidationFailed as exc:
        raise _named(exc, field) from None


def _named(exc: ValidationFailed, field: str) -> ValidationFailed:
    """The parser's error under the request's own field name (e.g. ``steps[1].where``)."""
    rules = [r for v in exc.fields.values() for r in v]
    return ValidationFailed(
        exc.message.replace("Invalid filter", f"Invalid {field}"), code=exc.code, fields={field: rules}
    )
