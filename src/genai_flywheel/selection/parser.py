"""Recursive-descent parser of the selection filter language.

Grammar (keywords case-insensitive; precedence NOT > AND > OR)::

    filter     := or_expr EOF
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | primary
    primary    := "(" or_expr ")" | comparison
    comparison := field ( cmp_op literal
                        | ["NOT"] ("CONTAINS" | "LIKE" | "ILIKE") string
                        | ["NOT"] "IN" "(" literal ("," literal)* ")"
                        | "IS" ["NOT"] "NULL" )
    cmp_op     := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal    := string | number | "true" | "false"

A chain ``a AND b AND c`` becomes one ``And`` with three operands; a parenthesised group stays a nested
node, so ``str(parse_filter(t))`` re-parses to an equal tree.
"""

from __future__ import annotations

from genai_flywheel.exceptions import FilterSyntaxError
from genai_flywheel.selection.lexer import Token, tokenize
from genai_flywheel.selection.nodes import (
    ASSESSMENT,
    EXECUTION_TIME,
    INPUTS,
    METADATA,
    NUMERIC_KINDS,
    OUTPUTS,
    STATUS,
    TAG,
    TEXT,
    TIMESTAMP,
    And,
    Compare,
    Expr,
    Field,
    Not,
    Or,
    Scalar,
)

_CMP_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_TEXT_KEYWORDS = ("CONTAINS", "LIKE", "ILIKE")
_OPERATORS_HINT = "=, !=, <, <=, >, >=, CONTAINS, LIKE, ILIKE, IN, NOT IN, IS NULL or IS NOT NULL"
_FIELDS_HINT = (
    "inputs.<key>, outputs[.<key>], assessments.<name>.value, feedback.<name>, tags.<key>, "
    "metadata.<key>, trace.status, trace.timestamp_ms, trace.execution_time_ms or trace.text"
)
# Trace attributes by the names (after trace./attributes., or bare) MLflow users write.
_ATTRIBUTES = {
    "status": STATUS,
    "timestamp_ms": TIMESTAMP,
    "timestamp": TIMESTAMP,
    "execution_time_ms": EXECUTION_TIME,
    "execution_time": EXECUTION_TIME,
}
_TEXT_ONLY_OPS = frozenset({"CONTAINS", "NOT CONTAINS", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"})


def parse_filter(text: str) -> Expr:
    """Parse a selection filter into an immutable node tree.

    Raises FilterSyntaxError with the 0-based position of the offending token and what was expected.
    """
    if not isinstance(text, str):
        raise FilterSyntaxError(f"a filter must be a string, got {type(text).__name__} {text!r}")
    parser = _Parser(text)
    try:
        return parser.parse()
    except RecursionError:
        # Hundreds of nested parentheses or NOTs: refuse rather than crash the DAG with a RecursionError.
        raise FilterSyntaxError(
            "the filter nests parentheses/NOT too deeply; flatten it", text, parser.tok.pos
        ) from None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers -------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def is_keyword(self, *words: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return tok.kind == "IDENT" and str(tok.value).upper() in words

    def error(self, message: str, tok: Token | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, self.text, (tok or self.tok).pos)

    # -- grammar -------------------------------------------------------------------------------------
    def parse(self) -> Expr:
        if self.tok.kind == "EOF":
            raise self.error(
                f"the filter is empty: expected a condition such as inputs.query CONTAINS 'x' (fields: {_FIELDS_HINT})"
            )
        expr = self.or_expr()
        if self.tok.kind == "RPAREN":
            raise self.error("unbalanced parenthesis: this ')' has no matching '('; remove it or add a '('")
        if self.tok.kind != "EOF":
            raise self.error(f"expected AND, OR or the end of the filter, got {self.tok.describe()}")
        return expr

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.is_keyword("OR"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.not_expr()]
        while self.is_keyword("AND"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Expr:
        if self.is_keyword("NOT"):
            self.advance()
            return Not(self.not_expr())
        return self.primary()

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "LPAREN":
            self.advance()
            inner = self.or_expr()
            if self.tok.kind == "EOF":
                raise self.error(
                    "unbalanced parenthesis: this '(' is never closed; expected ')' before the end of the filter",
                    tok,
                )
            if self.tok.kind != "RPAREN":
                raise self.error(f"expected AND, OR or ')', got {self.tok.describe()}")
            self.advance()
            return inner
        if tok.kind == "IDENT" and not self.is_keyword("AND", "OR", "NOT"):
            return self.comparison()
        raise self.error(
            f"expected a condition (a field such as inputs.query, NOT or '('), got {tok.describe()}; "
            f"fields are {_FIELDS_HINT}"
        )

    def comparison(self) -> Compare:
        field_tok = self.tok
        field = self.field()
        op_tok = self.tok
        op, value = self.operator_and_value(field)
        self.check_types(field, op, value, field_tok, op_tok)
        return Compare(field, op, value)

    def field(self) -> Field:
        start = self.advance()
        prefix = str(start.value)
        segments: list[str] = []
        while self.tok.kind == "DOT":
            self.advance()
            if self.tok.kind not in ("IDENT", "BQIDENT"):
                raise self.error(f"expected a key after '.', got {self.tok.describe()}")
            segments.append(str(self.advance().value))
        return self.resolve_field(prefix.lower(), segments, start)

    def resolve_field(self, prefix: str, segments: list[str], start: Token) -> Field:
        shown = ".".join([start.value, *segments])  # type: ignore[list-item]

        def key_of(example: str) -> str:
            key = ".".join(segments)
            if not segments or not key:
                raise self.error(f"field {shown!r} needs a key: expected {example}", start)
            return key

        if prefix in (INPUTS, OUTPUTS):
            return Field(prefix, tuple(segments))
        if prefix == "assessments":
            if len(segments) < 2 or segments[-1].lower() != "value":
                raise self.error(
                    f"unknown field {shown!r}: expected assessments.<name>.value, e.g. assessments.user_feedback.value",
                    start,
                )
            segments = segments[:-1]
            return Field(ASSESSMENT, (key_of("assessments.<name>.value"),))
        if prefix == "feedback":
            return Field(ASSESSMENT, (key_of("feedback.<name>, e.g. feedback.user_feedback"),))
        if prefix in ("tags", "tag"):
            return Field(TAG, (key_of("tags.<key>, e.g. tags.`mlflow.traceName`"),))
        if prefix in ("metadata", "request_metadata"):
            return Field(METADATA, (key_of("metadata.<key>, e.g. metadata.`mlflow.trace.user`"),))
        if prefix in ("trace", "attributes", "attribute") and len(segments) == 1:
            name = segments[0].lower()
            if name in _ATTRIBUTES:
                return Field(_ATTRIBUTES[name])
            if name == TEXT and prefix == "trace":
                return Field(TEXT)
        if not segments and prefix in _ATTRIBUTES:
            return Field(_ATTRIBUTES[prefix])
        raise self.error(f"unknown field {shown!r}: expected {_FIELDS_HINT}", start)

    def operator_and_value(self, field: Field) -> tuple[str, Scalar | tuple[Scalar, ...] | None]:
        tok = self.tok
        if tok.kind == "OP":
            self.advance()
            return _CMP_OPS[str(tok.value)], self.literal(f"after {tok.value}")
        if self.is_keyword(*_TEXT_KEYWORDS):
            self.advance()
            return str(tok.value).upper(), self.literal(f"after {str(tok.value).upper()}")
        if self.is_keyword("IN"):
            self.advance()
            return "IN", self.literal_list("IN")
        if self.is_keyword("NOT"):
            self.advance()
            if self.is_keyword(*_TEXT_KEYWORDS):
                word = str(self.advance().value).upper()
                return f"NOT {word}", self.literal(f"after NOT {word}")
            if self.is_keyword("IN"):
                self.advance()
                return "NOT IN", self.literal_list("NOT IN")
            raise self.error(f"expected IN, LIKE, ILIKE or CONTAINS after NOT, got {self.tok.describe()}")
        if self.is_keyword("IS"):
            self.advance()
            negated = self.is_keyword("NOT")
            if negated:
                self.advance()
            if not self.is_keyword("NULL"):
                raise self.error(f"expected NULL after IS{' NOT' if negated else ''}, got {self.tok.describe()}")
            self.advance()
            return ("IS NOT NULL" if negated else "IS NULL"), None
        if tok.kind == "EOF":
            raise self.error(f"missing operator after {field}: expected {_OPERATORS_HINT}")
        raise self.error(f"expected an operator after {field} ({_OPERATORS_HINT}), got {tok.describe()}")

    def literal(self, where: str) -> Scalar:
        tok = self.tok
        if tok.kind in ("STRING", "NUMBER"):
            self.advance()
            return tok.value
        if tok.kind == "IDENT":
            word = str(tok.value)
            if word.lower() in ("true", "false"):
                self.advance()
                return word.lower() == "true"
            if word.lower() == "null":
                raise self.error("NULL is not a value to compare with; write IS NULL or IS NOT NULL instead")
            raise self.error(
                f"expected a value {where} (a quoted string, a number, true or false), got the bare word "
                f"{word!r}; quote it: '{word}'"
            )
        if tok.kind == "EOF":
            raise self.error(f"missing value {where}: expected a quoted string, a number, true or false")
        raise self.error(f"expected a value {where} (a quoted string, a number, true or false), got {tok.describe()}")

    def literal_list(self, op: str) -> tuple[Scalar, ...]:
        if self.tok.kind != "LPAREN":
            raise self.error(
                f"expected '(' after {op}: write a list such as {op} ('a', 'b'), got {self.tok.describe()}"
            )
        self.advance()
        if self.tok.kind == "RPAREN":
            raise self.error(f"empty list after {op}: expected at least one value")
        items = [self.literal(f"in the {op} list")]
        while self.tok.kind == "COMMA":
            self.advance()
            items.append(self.literal(f"in the {op} list"))
        if self.tok.kind != "RPAREN":
            raise self.error(f"expected ',' or ')' in the {op} list, got {self.tok.describe()}")
        self.advance()
        return tuple(items)

    def check_types(
        self,
        field: Field,
        op: str,
        value: Scalar | tuple[Scalar, ...] | None,
        field_tok: Token,
        op_tok: Token,
    ) -> None:
        if field.kind == TEXT and op not in _TEXT_ONLY_OPS:
            raise self.error(f"trace.text supports only CONTAINS, LIKE and ILIKE (optionally NOT), got {op}", op_tok)
        if op in _TEXT_ONLY_OPS and not isinstance(value, str):
            raise self.error(
                f"{op} needs a quoted string pattern, got {value!r}; write e.g. {op} '{value}'",
                self.value_token(0),
            )
        if field.kind in NUMERIC_KINDS:
            if op in _TEXT_ONLY_OPS:
                raise self.error(f"{field} is a number; compare it with =, !=, <, <=, >, >= or IN", op_tok)
            values = value if isinstance(value, tuple) else (value,) if value is not None else ()
            example = "trace.timestamp_ms >= 1700000000000" if field.kind == TIMESTAMP else f"{field} > 2000"
            for index, item in enumerate(values):
                if isinstance(item, bool) or not isinstance(item, int | float):
                    raise self.error(
                        f"{field} compares with a number of milliseconds, got {item!r}; write e.g. {example}",
                        self.value_token(index, len(values)),
                    )

    def value_token(self, index: int, count: int = 1) -> Token:
        """The token of value ``index`` of the ``count`` values just parsed (a list ends with ')')."""
        if self.tokens[self.i - 1].kind != "RPAREN":
            return self.tokens[self.i - 1]
        # Walk back over "( v0 , v1 , ... vN-1 )": value k sits at i - 2 * (count - k).
        return self.tokens[self.i - 2 * (count - index)]
