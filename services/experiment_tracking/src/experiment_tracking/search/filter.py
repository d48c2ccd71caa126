"""MLflow's search language for runs and experiments: a hand-written tokenizer and parser.

Filters are `<entity>.<key> <operator> <value>` comparisons joined by AND; as an extension, OR and
parentheses are accepted too (AND binds tighter). Every error names the 0-based character
position where the filter stops making sense and what was expected there.

String values are single- or double-quoted; a quote is escaped by doubling it or with a
backslash, and `\\\\` is a backslash. Any other backslash is kept, so LIKE patterns can escape `%`
and `_` with it (PostgreSQL's LIKE escape character, used on every backend).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NoReturn

from mlops_kit.errors import BadRequest

Entity = Literal["metric", "param", "tag", "attribute", "dataset"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
Scalar = str | int | float
Value = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True)
class Comparison:
    """`entity.key op value`; value is a tuple for IN / NOT IN and None for IS [NOT] NULL."""

    entity: Entity
    key: str
    op: Op
    value: Value = None


@dataclass(frozen=True)
class And:
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Expr, ...]


Expr = Comparison | And | Or


@dataclass(frozen=True)
class OrderTerm:
    entity: Entity
    key: str
    ascending: bool = True


class InvalidFilter(BadRequest):
    code = "INVALID_FILTER"

    def __init__(self, text: str, position: int, problem: str, *, order_by: int | None = None) -> None:
        if order_by is None:
            message = f"invalid filter at position {position}: {problem}"
            details: dict[str, object] = {"position": position, "filter": text}
        else:
            message = f"invalid order_by[{order_by}] at position {position}: {problem}"
            details = {"position": position, "order_by": order_by, "clause": text}
        super().__init__(message, details)
        self.position = position


class _SyntaxError(Exception):
    def __init__(self, position: int, problem: str) -> None:
        super().__init__(problem)
        self.position = position
        self.problem = problem


# ---- what each search accepts


@dataclass(frozen=True)
class _Field:
    kind: Literal["number", "string", "integer"]
    ops: tuple[Op, ...]


_NUMBER = _Field("number", ("=", "!=", "<", "<=", ">", ">="))
_ID = _Field("string", ("=", "!=", "IN", "NOT IN"))
_STRING = _Field("string", ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"))
_KEYED = _Field("string", (*_STRING.ops, "IS NULL", "IS NOT NULL"))
_INTEGER_ID = _Field("integer", _ID.ops)


@dataclass(frozen=True)
class _Language:
    prefixes: Mapping[str, Entity]
    any_key: Mapping[Entity, _Field]
    known_keys: Mapping[Entity, Mapping[str, _Field]]
    key_aliases: Mapping[str, str]
    orderable: frozenset[Entity]


_ATTRIBUTE_PREFIXES: dict[str, Entity] = {
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
}
_TAG_PREFIXES: dict[str, Entity] = {"tag": "tag", "tags": "tag"}

_RUNS = _Language(
    prefixes={
        **_ATTRIBUTE_PREFIXES,
        **_TAG_PREFIXES,
        "run": "attribute",
        "metric": "metric",
        "metrics": "metric",
        "param": "param",
        "params": "param",
        "parameter": "param",
        "parameters": "param",
        "dataset": "dataset",
        "datasets": "dataset",
    },
    any_key={"metric": _NUMBER, "param": _KEYED, "tag": _KEYED},
    known_keys={
        "attribute": {
            "run_id": _ID,
            "run_name": _STRING,
            "status": _STRING,
            "user_id": _STRING,
            "artifact_uri": _STRING,
            "lifecycle_stage": _STRING,
            "start_time": _NUMBER,
            "end_time": _NUMBER,
        },
        "dataset": {"name": _STRING, "digest": _STRING, "context": _STRING},
    },
    key_aliases={
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
    },
    orderable=frozenset({"metric", "param", "tag", "attribute"}),
)

_EXPERIMENTS = _Language(
    prefixes={**_ATTRIBUTE_PREFIXES, **_TAG_PREFIXES},
    any_key={"tag": _KEYED},
    known_keys={
        "attribute": {
            "name": _STRING,
            "experiment_id": _INTEGER_ID,
            "creation_time": _NUMBER,
            "last_update_time": _NUMBER,
        }
    },
    key_aliases={},
    orderable=frozenset({"attribute"}),
)

_LANGUAGES = {"runs": _RUNS, "experiments": _EXPERIMENTS}


# ---- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: Literal["name", "string", "number", "op", "(", ")", ",", "end"]
    start: int
    end: int
    value: Scalar = ""
    entity: str | None = None  # a name's text before its first dot
    quoted: bool = False

    def keyword(self) -> str | None:
        if self.kind == "name" and self.entity is None and not self.quoted:
            return str(self.value).upper()
        return None


_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[^\W\d]\w*")
_KEY = re.compile(r"[\w.]+")
_OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
_PUNCTUATION: dict[str, Literal["(", ")", ","]] = {"(": "(", ")": ")", ",": ","}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = _skip_space(text, 0)
    while at < len(text):
        token = _scan(text, at)
        tokens.append(token)
        at = _skip_space(text, token.end)
    tokens.append(_Token("end", len(text), len(text)))
    return tokens


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _scan(text: str, at: int) -> _Token:
    char = text[at]
    if char in _PUNCTUATION:
        return _Token(_PUNCTUATION[char], at, at + 1)
    if char in "'\"":
        value, end = _scan_quoted(text, at)
        return _Token("string", at, end, value)
    if char == "`":
        value, end = _scan_quoted(text, at)
        return _Token("name", at, end, value, quoted=True)
    if number := _NUMBER_RE.match(text, at):
        return _number(text, number)
    if word := _WORD.match(text, at):
        return _scan_name(text, word)
    for op in _OPERATORS:
        if text.startswith(op, at):
            return _Token("op", at, at + len(op), op)
    raise _SyntaxError(at, f"unexpected character {char!r}")


def _number(text: str, match: re.Match[str]) -> _Token:
    literal = match.group()
    if trailing := _WORD.match(text, match.end()):
        raise _SyntaxError(match.start(), f"invalid number {literal + trailing[0]!r}")
    # an integer past 64 bits is compared as a float (the columns hold 64-bit integers and
    # doubles; int() would also refuse a literal of thousands of digits)
    exact = not any(c in literal for c in ".eE") and len(literal.lstrip("+-")) <= 18
    value: Scalar = int(literal) if exact else float(literal)
    return _Token("number", match.start(), match.end(), value)


def _scan_quoted(text: str, start: int) -> tuple[str, int]:
    quote, out, at = text[start], [], start + 1
    while at < len(text):
        char = text[at]
        if char == "\\" and text[at + 1 : at + 2] in (quote, "\\"):
            out.append(text[at + 1])
            at += 2
        elif char == quote and text[at + 1 : at + 2] == quote:
            out.append(quote)
            at += 2
        elif char == quote:
            return "".join(out), at + 1
        else:
            out.append(char)
            at += 1
    raise _SyntaxError(start, f"unterminated quoted text starting with {quote}")


def _scan_name(text: str, match: re.Match[str]) -> _Token:
    start, dot, word = match.start(), match.end(), match[0]
    if text[dot : dot + 1] != ".":
        return _Token("name", start, dot, word)
    if text[dot + 1 : dot + 2] in ("`", '"'):
        key, end = _scan_quoted(text, dot + 1)
        if not key:
            raise _SyntaxError(dot + 1, f"expected a key after '{word}.', got an empty quoted key")
        return _Token("name", start, end, key, entity=word, quoted=True)
    key_match = _KEY.match(text, dot + 1)
    if key_match is None:
        raise _SyntaxError(dot + 1, f"expected a key after '{word}.'")
    return _Token("name", start, key_match.end(), key_match[0], entity=word)


# ---- parser


class _Parser:
    def __init__(self, text: str, language: _Language) -> None:
        self.text = text
        self.language = language
        self.tokens = _tokenize(text)
        self.at = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at = min(self.at + 1, len(self.tokens) - 1)
        return token

    def take_keyword(self, *keywords: str) -> str | None:
        keyword = self.peek().keyword()
        if keyword in keywords:
            self.take()
            return keyword
        return None

    def expect(self, kind: str, expected: str) -> None:
        token = self.take()
        if token.kind != kind:
            self.fail(token, expected)

    def fail(self, token: _Token, expected: str) -> NoReturn:
        got = "the end of the text" if token.kind == "end" else repr(self.source(token))
        raise _SyntaxError(token.start, f"expected {expected}, got {got}")

    def source(self, token: _Token) -> str:
        return self.text[token.start : token.end]

    # filter := conjunction (OR conjunction)*;  conjunction := primary (AND primary)*
    def filter(self) -> Expr:
        expr = self.disjunction()
        if self.peek().kind != "end":
            self.fail(self.peek(), "AND, OR or the end of the filter")
        return expr

    def disjunction(self) -> Expr:
        terms = [self.conjunction()]
        while self.take_keyword("OR"):
            terms.append(self.conjunction())
        return _combine(Or, terms)

    def conjunction(self) -> Expr:
        terms = [self.primary()]
        while self.take_keyword("AND"):
            terms.append(self.primary())
        return _combine(And, terms)

    def primary(self) -> Expr:
        if self.peek().kind != "(":
            return self.comparison()
        opening = self.take()
        self.depth += 1
        if self.depth > _MAX_DEPTH:  # a recursion error would be a 500, not a bad filter
            raise _SyntaxError(opening.start, f"parentheses nest deeper than {_MAX_DEPTH} levels")
        expr = self.disjunction()
        self.expect(")", "AND, OR or ')'")
        self.depth -= 1
        return expr

    def comparison(self) -> Comparison:
        name = self.take()
        if name.kind != "name" or name.keyword() in _KEYWORDS:
            self.fail(name, "a comparison such as metrics.accuracy > 0.9, or '('")
        entity, key, field = self.resolve(name, ordering=False)
        op_token = self.peek()
        op = self.operator(name)
        if op not in field.ops:
            allowed = ", ".join(field.ops)
            where = f"{entity} '{key}'"
            raise _SyntaxError(
                op_token.start, f"operator {op} is not allowed for {where} (allowed: {allowed})"
            )
        return Comparison(entity, key, op, self.value(field, op, f"{self.source(name)} {op}"))

    def resolve(self, name: _Token, *, ordering: bool) -> tuple[Entity, str, _Field]:
        language, key = self.language, str(name.value)
        entity = "attribute" if name.entity is None else language.prefixes.get(name.entity.lower())
        if entity is None:
            prefixes = ", ".join(language.prefixes)
            raise _SyntaxError(name.start, f"unknown entity '{name.entity}' (expected one of {prefixes})")
        if ordering and entity not in language.orderable:
            raise _SyntaxError(name.start, f"cannot order by '{name.entity}'")
        if entity in language.any_key:
            return entity, key, language.any_key[entity]
        key = language.key_aliases.get(key, key) if entity == "attribute" else key
        known = language.known_keys[entity]
        if key not in known:
            raise _SyntaxError(name.start, f"unknown {entity} '{key}' (expected one of {', '.join(known)})")
        return entity, key, known[key]

    def operator(self, name: _Token) -> Op:
        token = self.take()
        if token.kind == "op":
            return _SYMBOLS[str(token.value)]
        keyword = token.keyword()
        if keyword in ("LIKE", "ILIKE", "IN"):
            return _KEYWORD_OPS[keyword]
        if keyword == "NOT":
            return "NOT IN" if self.take_keyword("IN") else self.fail(self.peek(), "IN after NOT")
        if keyword == "IS":
            negated = self.take_keyword("NOT")
            if not self.take_keyword("NULL"):
                self.fail(self.peek(), "NULL after IS NOT" if negated else "NULL or NOT NULL after IS")
            return "IS NOT NULL" if negated else "IS NULL"
        self.fail(token, f"a comparison operator after '{self.source(name)}'")

    def value(self, field: _Field, op: Op, lhs: str) -> Value:
        if op in ("IS NULL", "IS NOT NULL"):
            return None
        if op not in ("IN", "NOT IN"):
            return self.scalar(field, op, lhs)
        self.expect("(", f"'(' after '{lhs}'")
        items = [self.scalar(field, op, lhs)]
        while self.peek().kind == ",":
            self.take()
            items.append(self.scalar(field, op, lhs))
        self.expect(")", "',' or ')'")
        return tuple(items)

    def scalar(self, field: _Field, op: Op, lhs: str) -> Scalar:
        token = self.take()
        if field.kind == "number" and token.kind == "number":
            return token.value
        if field.kind == "integer" and token.kind in ("number", "string") and _is_integer(token.value):
            return int(token.value)
        if field.kind == "string" and token.kind == "string":
            if op in ("LIKE", "ILIKE") and _ends_with_escape(str(token.value)):
                raise _SyntaxError(token.start, "a LIKE pattern cannot end with the escape character '\\'")
            return token.value
        expected = {"number": "a number", "integer": "an integer id", "string": "a quoted string"}
        self.fail(token, f"{expected[field.kind]} after '{lhs}'")

    def order_term(self) -> OrderTerm:
        name = self.take()
        if name.kind != "name" or name.keyword() in _KEYWORDS:
            self.fail(name, "a column to order by, such as metrics.f1 or start_time")
        entity, key, _ = self.resolve(name, ordering=True)
        direction = self.take_keyword("ASC", "DESC")
        if self.peek().kind != "end":
            expected = "the end of the clause" if direction else f"ASC or DESC after '{self.source(name)}'"
            self.fail(self.peek(), expected)
        return OrderTerm(entity, key, direction != "DESC")


_MAX_DEPTH = 32
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "ASC", "DESC"}
_SYMBOLS: dict[str, Op] = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_KEYWORD_OPS: dict[str, Op] = {"LIKE": "LIKE", "ILIKE": "ILIKE", "IN": "IN"}


def _combine(kind: type[And] | type[Or], terms: list[Expr]) -> Expr:
    if len(terms) == 1:
        return terms[0]
    # (a AND b) AND c is a AND b AND c: one canonical tree per meaning
    flat = [part for term in terms for part in (term.terms if isinstance(term, kind) else (term,))]
    return kind(tuple(flat))


def _is_integer(value: Scalar) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())


def _ends_with_escape(pattern: str) -> bool:
    return (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1


# ---- public entry points


def parse_run_filter(text: str | None) -> Expr | None:
    """Parse a runs filter; None when there is nothing to filter on."""
    return _parse_filter(text, _RUNS)


def parse_experiment_filter(text: str | None) -> Expr | None:
    """Parse an experiments filter; None when there is nothing to filter on."""
    return _parse_filter(text, _EXPERIMENTS)


def parse_order_by(items: list[str] | None, kind: Literal["runs", "experiments"] = "runs") -> list[OrderTerm]:
    terms: list[OrderTerm] = []
    for index, item in enumerate(items or []):
        try:
            term = _Parser(item, _LANGUAGES[kind]).order_term()
        except _SyntaxError as exc:
            raise InvalidFilter(item, exc.position, exc.problem, order_by=index) from None
        if any((t.entity, t.key) == (term.entity, term.key) for t in terms):
            raise InvalidFilter(item, 0, f"{term.entity} '{term.key}' is ordered by twice", order_by=index)
        terms.append(term)
    return terms


def _parse_filter(text: str | None, language: _Language) -> Expr | None:
    if text is None or not text.strip():
        return None
    try:
        return _Parser(text, language).filter()
    except _SyntaxError as exc:
        raise InvalidFilter(text, exc.position, exc.problem) from None
