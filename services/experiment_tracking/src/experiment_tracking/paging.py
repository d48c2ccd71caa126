"""Opaque page tokens (an offset, base64-encoded JSON, as MLflow's own stores do)."""

from __future__ import annotations

import base64

import orjson
from mlops_kit.bounds import MAX_OFFSET

from experiment_tracking.errors import InvalidValue


def encode(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode()


def decode(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = orjson.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise InvalidValue(f"invalid page token {token!r}", {"page_token": token}) from None
    if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidValue(f"invalid page token {token!r}", {"page_token": token})
    return offset


def next_token(offset: int, limit: int, fetched: int) -> str | None:
    """`fetched` counts rows read with limit + 1: one more than asked means another page exists."""
    return encode(offset + limit) if fetched > limit else None
