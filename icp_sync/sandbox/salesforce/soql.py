"""The SOQL subset the sandbox answers: parse a query, then filter, sort and slice records.

Supported: ``SELECT field, ... | COUNT() FROM Object [WHERE condition] [ORDER BY field
[ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``; conditions combine comparisons
(``= != <> < <= > >=``), ``[NOT] IN (...)``, ``[NOT] LIKE``, ``= null`` / ``!= null``
with ``AND``, ``OR``, ``NOT`` and parentheses. Literals: quoted strings with backslash
escapes, numbers, ``true``/``false``/``null``, unquoted dates (``2024-01-31``) and datetimes
(``2024-01-31T10:00:00Z``, ``...+01:00``, ``.000Z``). As in Salesforce, text comparisons
ignore letter case, ``!=`` matches nulls, and ascending order puts nulls first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Query",
    "SoqlError",
    "columns",
    "compile_where",
    "evaluate",
    "parse",
    "parse_datetime_ms",
]

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "TRUE",
        "FALSE",
        "NULL",
        "COUNT",
    }
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(ValueError):
    """A query the sandbox refuses, with the Salesforce error code to answer."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    position: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A parsed literal: its kind (string, number, date, datetime, bool, null) and value."""

    kind: str
    value: Any


@dataclass(slots=True)
class Query:
    """A parsed SOQL query."""

    fields: list[str]
    sobject: str
    where: Any = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    count: bool = False


def parse_datetime_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO datetime (``Z``, ``+0000`` or ``+00:00``)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", value):
        value = value[:-2] + ":" + value[-2:]
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected character at {position}: {text[position]!r}"
            )
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(_Token(kind, match.group(), position))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self, offset: int = 0) -> _Token | None:
        position = self.index + offset
        return self.tokens[position] if position < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token.kind == "word" and token.text.upper() == word:
            self.index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            found = token.text if token else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"expecting {word}, found {found!r}")

    def punct(self, symbol: str) -> bool:
        token = self.peek()
        if token and token.kind == "punct" and token.text == symbol:
            self.index += 1
            return True
        return False

    def expect_punct(self, symbol: str) -> None:
        if not self.punct(symbol):
            token = self.peek()
            found = token.text if token else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"expecting {symbol!r}, found {found!r}")

    def name(self) -> str:
        token = self.peek()
        if token is None or token.kind != "word" or token.text.upper() in _KEYWORDS:
            found = token.text if token else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"expecting a field name, found {found!r}")
        self.index += 1
        return token.text

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        query = Query(fields=[], sobject="")
        token, following = self.peek(), self.peek(1)
        if token and following and token.text.upper() == "COUNT" and following.text == "(":
            self.index += 1
            self.expect_punct("(")
            self.expect_punct(")")
            query.count = True
        else:
            query.fields.append(self.name())
            while self.punct(","):
                query.fields.append(self.name())
        self.expect_keyword("FROM")
        query.sobject = self.name()
        if self.keyword("WHERE"):
            query.where = self.condition()
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            query.order.append(self.order_item())
            while self.punct(","):
                query.order.append(self.order_item())
        if self.keyword("LIMIT"):
            query.limit = self.integer()
        if self.keyword("OFFSET"):
            query.offset = self.integer()
        leftover = self.peek()
        if leftover is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token {leftover.text!r}")
        return query

    def integer(self) -> int:
        token = self.peek()
        if token is None or token.kind != "number" or "." in token.text:
            raise SoqlError("MALFORMED_QUERY", "expecting an integer")
        self.index += 1
        return int(token.text)

    def order_item(self) -> tuple[str, bool, bool]:
        column = self.name()
        descending = False
        if self.keyword("DESC"):
            descending = True
        else:
            self.keyword("ASC")
        nulls_first = not descending
        if self.keyword("NULLS"):
            if self.keyword("LAST"):
                nulls_first = False
            else:
                self.expect_keyword("FIRST")
                nulls_first = True
        return column, descending, nulls_first

    def condition(self) -> Any:
        left = self.conjunction()
        while self.keyword("OR"):
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self) -> Any:
        left = self.negation()
        while self.keyword("AND"):
            left = ("and", left, self.negation())
        return left

    def negation(self) -> Any:
        if self.keyword("NOT"):
            return ("not", self.negation())
        if self.punct("("):
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Any:
        column = self.name()
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect_punct("(")
            values = [self.literal()]
            while self.punct(","):
                values.append(self.literal())
            self.expect_punct(")")
            return ("not in" if negated else "in", column, values)
        if self.keyword("LIKE"):
            pattern = self.literal()
            return ("not like" if negated else "like", column, pattern)
        if negated:
            raise SoqlError("MALFORMED_QUERY", "NOT must precede IN or LIKE here")
        token = self.peek()
        if token is None or token.kind != "op":
            found = token.text if token else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"expecting an operator, found {found!r}")
        self.index += 1
        operator = "!=" if token.text == "<>" else token.text
        return (operator, column, self.literal())

    def literal(self) -> Literal:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "expecting a value, found end of query")
        self.index += 1
        if token.kind == "string":
            return Literal("string", _unescape(token.text[1:-1]))
        if token.kind == "number":
            return Literal("number", float(token.text))
        if token.kind == "datetime":
            return Literal("datetime", parse_datetime_ms(token.text))
        if token.kind == "date":
            return Literal("date", token.text)
        word = token.text.upper()
        if word in ("TRUE", "FALSE"):
            return Literal("bool", word == "TRUE")
        if word == "NULL":
            return Literal("null", None)
        raise SoqlError("MALFORMED_QUERY", f"unexpected value {token.text!r}")


def _unescape(text: str) -> str:
    out = []
    iterator = iter(text)
    for char in iterator:
        if char == "\\":
            following = next(iterator, "")
            if following not in _ESCAPES:
                raise SoqlError("MALFORMED_QUERY", f"invalid escape sequence \\{following}")
            out.append(_ESCAPES[following])
        else:
            out.append(char)
    return "".join(out)


def parse(text: str) -> Query:
    """Parse a SOQL query.

    Raises:
        SoqlError: ``MALFORMED_QUERY`` with what was wrong.
    """
    return _Parser(text).parse()


def columns(query: Query) -> set[str]:
    """Every field the query names (selected, filtered or sorted)."""
    found = set(query.fields) | {column for column, _, _ in query.order}

    def walk(node: Any) -> None:
        if node is None:
            return
        if node[0] in ("and", "or"):
            walk(node[1])
            walk(node[2])
        elif node[0] == "not":
            walk(node[1])
        else:
            found.add(node[1])

    walk(query.where)
    return found


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


def _coerce(literal: Literal, kind: str) -> Any:  # noqa: PLR0911 (one return per field type)
    """A literal in the form records store for a field of ``kind``."""
    if literal.value is None:
        return None
    if kind == "datetime":
        if literal.kind == "date":
            return parse_datetime_ms(literal.value + "T00:00:00Z")
        if literal.kind != "datetime":
            raise SoqlError("INVALID_FIELD", f"value of type {literal.kind} for a datetime field")
        return literal.value
    if kind == "date":
        if literal.kind not in ("date", "datetime"):
            raise SoqlError("INVALID_FIELD", f"value of type {literal.kind} for a date field")
        if literal.kind == "datetime":
            return datetime.fromtimestamp(literal.value / 1000, UTC).strftime("%Y-%m-%d")
        return literal.value
    if kind in ("double", "currency", "percent", "int"):
        if literal.kind != "number":
            raise SoqlError("INVALID_FIELD", f"value of type {literal.kind} for a number field")
        return literal.value
    if kind == "boolean":
        if literal.kind != "bool":
            raise SoqlError("INVALID_FIELD", f"value of type {literal.kind} for a boolean field")
        return literal.value
    return str(literal.value)


def _text_kind(kind: str) -> bool:
    return kind in ("string", "combobox", "textarea", "picklist", "url", "email", "phone")


def compile_where(node: Any, kind_of: Callable[[str], str]) -> Predicate:  # noqa: PLR0911 (one return per operator)
    """A predicate over stored records for a parsed WHERE clause."""
    if node is None:
        return lambda _: True
    head = node[0]
    if head == "and":
        left, right = compile_where(node[1], kind_of), compile_where(node[2], kind_of)
        return lambda r: left(r) and right(r)
    if head == "or":
        left, right = compile_where(node[1], kind_of), compile_where(node[2], kind_of)
        return lambda r: left(r) or right(r)
    if head == "not":
        inner = compile_where(node[1], kind_of)
        return lambda r: not inner(r)
    column = node[1]
    kind = kind_of(column)
    fold = _text_kind(kind)

    def value_of(record: Record) -> Any:
        value = record.get(column)
        return value.casefold() if fold and isinstance(value, str) else value

    if head in ("in", "not in"):
        wanted = {_folded(_coerce(v, kind), fold) for v in node[2]}
        if head == "in":
            return lambda r: value_of(r) in wanted
        return lambda r: value_of(r) not in wanted
    if head in ("like", "not like"):
        pattern = _like(str(node[2].value))
        if head == "like":
            return lambda r: isinstance(r.get(column), str) and bool(pattern.match(r[column]))
        return lambda r: not (isinstance(r.get(column), str) and bool(pattern.match(r[column])))
    target = _folded(_coerce(node[2], kind), fold)
    return _comparison(head, value_of, target)


def _folded(value: Any, fold: bool) -> Any:
    return value.casefold() if fold and isinstance(value, str) else value


def _comparison(operator: str, value_of: Callable[[Record], Any], target: Any) -> Predicate:
    if operator == "=":
        return lambda r: value_of(r) == target
    if operator == "!=":
        return lambda r: value_of(r) != target
    if target is None:
        raise SoqlError(
            "MALFORMED_QUERY", f"null can only be compared with = or !=, not {operator}"
        )
    tests: dict[str, Callable[[Any], bool]] = {
        "<": lambda v: v < target,
        "<=": lambda v: v <= target,
        ">": lambda v: v > target,
        ">=": lambda v: v >= target,
    }
    test = tests[operator]

    def predicate(record: Record) -> bool:
        value = value_of(record)
        return value is not None and test(value)

    return predicate


def evaluate(
    query: Query, records: Sequence[Record], kind_of: Callable[[str], str]
) -> list[Record]:
    """Filter, sort and slice ``records`` as the query says (projection is the caller's)."""
    predicate = compile_where(query.where, kind_of)
    result = [r for r in records if predicate(r)]
    for column, descending, nulls_first in reversed(query.order):
        fold = _text_kind(kind_of(column))
        present = [r for r in result if r.get(column) is not None]
        missing = [r for r in result if r.get(column) is None]
        present.sort(key=lambda r: _folded(r[column], fold), reverse=descending)
        result = missing + present if nulls_first else present + missing
    end = None if query.limit is None else query.offset + query.limit
    return result[query.offset : end]
