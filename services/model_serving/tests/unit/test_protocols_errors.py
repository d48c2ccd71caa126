"""Bad bodies, every protocol: each is a ProtocolError that says what was expected and where, never any
other exception (a 500); plus a seeded fuzz of mutated valid bodies."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import orjson
import pytest
from model_serving.protocols import (
    MAX_COLUMNS,
    MAX_ROWS,
    Inputs,
    ProtocolError,
    decode_deployment_predict,
    decode_invocations,
    decode_predict,
    decode_v2_infer,
)


def invocations(body: bytes) -> Inputs:
    return decode_invocations(body, "application/json")


def csv(body: bytes) -> Inputs:
    return decode_invocations(body, "text/csv")


Decoder = Callable[[bytes], Inputs]
ROWS = orjson.dumps({"features": [[0.0]] * (MAX_ROWS + 1)})
WIDE = orjson.dumps({"features": [0.0] * (MAX_COLUMNS + 1)})
LONG = "x" * 1025
DEEP = b'{"features": ' + b"[" * 5000 + b"]" * 5000 + b"}"

BAD_BODIES: list[tuple[str, Decoder, bytes, str, str]] = [
    # (case, decoder, body, message fragment, path)
    ("invalid json", decode_predict, b'{"features": [1, 2', "not valid JSON", "$"),
    ("empty", decode_predict, b"", "body is empty", "$"),
    ("not utf-8", decode_predict, b'{"features": ["\xff"]}', "not valid JSON", "$"),
    ("too deep", decode_predict, DEEP, "not valid JSON", "$"),
    ("top-level array", decode_predict, b"[1, 2]", "Expected a JSON object", "$"),
    ("no features", decode_predict, b'{"user_id": "u"}', "'features' is required", "$.features"),
    ("typo field", decode_predict, b'{"feature": [1]}', "Unknown field(s) feature", "$.feature"),
    ("empty features", decode_predict, b'{"features": []}', "empty array", "$.features"),
    ("features a string", decode_predict, b'{"features": "1,2"}', "array of values or rows", "$.features"),
    (
        "ragged",
        decode_predict,
        b'{"features": [[1, 2], [3]]}',
        "Row 1 has 1 values but row 0 has 2",
        "$.features[1]",
    ),
    ("row not array", decode_predict, b'{"features": [[1, 2], 3]}', "a row (an array", "$.features[1]"),
    ("mixed flat row", decode_predict, b'{"features": [1, [2]]}', "nested arrays", "$.features[1]"),
    ("NaN", decode_predict, b'{"features": [1, NaN]}', "not valid JSON", "$"),
    ("Infinity", decode_predict, b'{"features": [1, Infinity]}', "not valid JSON", "$"),
    ("1e400", decode_predict, b'{"features": [1e400]}', "infinity", "$"),
    (
        "2^64 int",
        decode_predict,
        b'{"features": [18446744073709551616]}',
        "does not fit in 64 bits",
        "$.features[0]",
    ),
    (
        "2^64-1 int",
        decode_predict,
        b'{"features": [18446744073709551615]}',
        "does not fit in 64 bits",
        "$.features[0]",
    ),
    ("-2^63-1 int", decode_predict, b'{"features": [-9223372036854775809]}', "does not fit", "$.features[0]"),
    (
        "400-digit int",
        decode_predict,
        b'{"features": [1' + b"0" * 400 + b"]}",
        "infinity when parsed",
        "$",
    ),
    (
        "object as value",
        decode_predict,
        b'{"features": {"a": {"b": 1}}}',
        "nested arrays and objects",
        "$.features.a",
    ),
    ("array as named value", decode_predict, b'{"features": {"a": [1]}}', "nested arrays", "$.features.a"),
    (
        "long string",
        decode_predict,
        orjson.dumps({"features": [LONG]}),
        "longer than the limit",
        "$.features[0]",
    ),
    (
        "long column name",
        decode_predict,
        orjson.dumps({"features": {LONG: 1}}),
        "column name longer",
        "$.features[0]",
    ),
    ("too many rows", decode_predict, ROWS, "10001 rows is more than the limit of 10000", "$.features"),
    ("too many columns", decode_predict, WIDE, "10001 columns is more than the limit", "$.features"),
    (
        "request_id a number",
        decode_predict,
        b'{"features": [1], "request_id": 5}',
        "request id",
        "$.request_id",
    ),
    ("user_id an object", decode_predict, b'{"features": [1], "user_id": {}}', "entity key", "$.user_id"),
    (
        "entity value float",
        decode_predict,
        b'{"features": [1], "entities": {"s": 1.5}}',
        "entity key",
        "$.entities.s",
    ),
    (
        "params a list",
        decode_predict,
        b'{"features": [1], "params": [1]}',
        "parameters as a JSON object",
        "$.params",
    ),
    (
        "instances and inputs",
        decode_deployment_predict,
        b'{"instances": [[1]], "inputs": [[1]]}',
        "not both",
        "$",
    ),
    (
        "instances an object",
        decode_deployment_predict,
        b'{"instances": {"a": 1}}',
        "array of rows",
        "$.instances",
    ),
    (
        "nothing to predict",
        decode_deployment_predict,
        b'{"user_id": "u"}',
        "Expected 'instances' or 'inputs'",
        "$",
    ),
    (
        "record not object",
        decode_deployment_predict,
        b'{"instances": [{"a": 1}, [1]]}',
        "a record",
        "$.instances[1]",
    ),
    (
        "entities per row mismatch",
        decode_deployment_predict,
        b'{"instances": [[1], [2]], "entities": [{"user_id": "a"}]}',
        "hold 2 objects",
        "$.entities",
    ),
    (
        "request_ids mismatch",
        decode_deployment_predict,
        b'{"instances": [[1], [2]], "request_ids": ["a"]}',
        "array of 2 ids",
        "$.request_ids",
    ),
    (
        "ragged columns",
        decode_deployment_predict,
        b'{"inputs": {"a": [1, 2], "b": [1]}}',
        "columns need the same length",
        "$.inputs.b",
    ),
    (
        "mixed scalar and column",
        decode_deployment_predict,
        b'{"inputs": {"a": [1, 2], "b": 1}}',
        "to be an array of values",
        "$.inputs.b",
    ),
    (
        "both mlflow formats",
        invocations,
        b'{"dataframe_split": {"data": [[1]]}, "instances": [[1]]}',
        "exactly one of the input fields",
        "$",
    ),
    (
        "mlflow ragged",
        invocations,
        b'{"dataframe_split": {"data": [[1, 2], [3]]}}',
        "Row 1 has 1",
        "$.dataframe_split.data[1]",
    ),
    (
        "mlflow nested value",
        invocations,
        b'{"dataframe_records": [{"a": {"b": 1}}]}',
        "nested",
        "$.dataframe_records[0].a",
    ),
    ("mlflow no rows", invocations, b'{"inputs": []}', "at least one row", "$.inputs"),
    (
        "mlflow 2^64",
        invocations,
        b'{"inputs": [[18446744073709551616, NaN]]}',
        "does not fit in 64 bits",
        "$.inputs[0][0]",
    ),
    ("csv empty", csv, b"", "no header row", "line 1"),
    ("csv header only", csv, b"a,b\n", "at least one row", "line 2"),
    ("csv not utf-8", csv, b"a\n\xff\n", "valid UTF-8", "line 1"),
    ("csv ragged", csv, b"a,b\n1,2,3\n", "Expected 2 fields in line 2, saw 3", "line 2"),
    ("csv huge int", csv, b"a\n" + b"9" * 30 + b"\n", "does not fit in 64 bits", "line 2"),
    ("csv long string", csv, b"a\n" + LONG.encode() + b"\n", "at most 1024 characters", "line 2"),
    ("csv duplicate columns", csv, b"a,a\n1,2\n", "named twice", "line 1"),
    (
        "v2 shape mismatch",
        decode_v2_infer,
        b'{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}',
        "3 elements but shape [2, 2] needs 4",
        "$.inputs[0].data",
    ),
    (
        "v2 bad datatype",
        decode_v2_infer,
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "float64", "data": [1]}]}',
        "Unknown datatype 'float64'",
        "$.inputs[0].datatype",
    ),
    (
        "v2 NaN",
        decode_v2_infer,
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [NaN]}]}',
        "not valid JSON",
        "$",
    ),
    (
        "v2 2^64 into INT64",
        decode_v2_infer,
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "INT64", "data": [18446744073709551616]}]}',
        "INT64 data",
        "$.inputs[0].data[0]",
    ),
    ("v2 id a number", decode_v2_infer, b'{"id": 42, "inputs": []}', "request id", "$.id"),
]


@pytest.mark.parametrize(
    ("decoder", "body", "message", "path"), [case[1:] for case in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_bad_body_is_a_protocol_error_naming_the_place(
    decoder: Decoder, body: bytes, message: str, path: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        decoder(body)
    assert message in caught.value.message
    assert caught.value.details["path"] == path
    assert caught.value.status_code == 422


VALID_BODIES: list[tuple[Decoder, bytes]] = [
    (decode_predict, b'{"features": [1.5, -0.3, "a", true, null], "user_id": "u1", "request_id": "r"}'),
    (decode_predict, b'{"features": {"a": 1, "b": 2}, "entities": {"k": 3}}'),
    (decode_deployment_predict, b'{"instances": [{"a": 1, "b": "x"}, {"a": 2}], "request_ids": ["1", "2"]}'),
    (decode_deployment_predict, b'{"inputs": {"a": [1, 2], "b": [3, 4]}, "entities": [{"u": 1}, {"u": 2}]}'),
    (
        invocations,
        b'{"dataframe_split": {"index": [0], "columns": ["a", "b"], "data": [[1, NaN]]}, "params": {}}',
    ),
    (invocations, b'{"dataframe_records": [{"a": 1}, {"b": 2}]}'),
    (csv, b'a,b,c\n1,2.5,x\n"3",,true\n'),
    (
        decode_v2_infer,
        b'{"id": "1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32",'
        b' "data": [[1, 2], [3, 4]]}]}',
    ),
    (
        decode_v2_infer,
        b'{"inputs": [{"name": "a", "shape": [2], "datatype": "BYTES", "data": ["p", "q"]},'
        b' {"name": "b", "shape": [2, 1], "datatype": "BOOL", "data": [true, false]}]}',
    ),
]
GARBAGE = [
    b"",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b'"',
    b"\\",
    b"\xff",
    b"1e999",
    b"-",
    b"NaN",
    b"null",
    b"[[",
    b"{}",
]


def mutations(body: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(body) + 1)
    kind = rng.randrange(4)
    if kind == 0:
        return body[:at]
    if kind == 1:
        return body[:at] + rng.choice(GARBAGE) + body[at:]
    if kind == 2:
        return body[:at] + body[at + rng.randrange(1, 8) :]
    return body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]


@pytest.mark.parametrize(("decoder", "body"), VALID_BODIES)
def test_mutated_bodies_decode_or_raise_protocol_error_only(decoder: Decoder, body: bytes) -> None:
    decoder(body)  # the seed body itself is valid
    rng = random.Random(body)
    for _ in range(1500):
        mutated = mutations(body, rng)
        with contextlib.suppress(ProtocolError):
            decoder(mutated)
