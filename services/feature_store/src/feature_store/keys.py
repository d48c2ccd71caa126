"""Entity keys as the online and offline stores hold them: the one rule for ingestion, push and
serving (`FeatureSetView.entity_key` uses it too), built once per view as fast closures.

A single join key's value as text (ints normalized, `"042"` -> `"42"`), composite keys joined by
U+001F in the entity's join-key order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from feature_store.errors import InvalidRequest

KEY_SEPARATOR = "\x1f"
MAX_KEY = 512  # the stored key's column width, composite keys included
INT64 = (-(2**63), 2**63 - 1)

KeyPart = Callable[[Any], str]
Keyer = Callable[[Any], str]


class KeyedEntity(Protocol):
    """What keys need of a feature set (`registry.views.FeatureSetView` is one): its entity."""

    @property
    def entity(self) -> str: ...
    @property
    def entity_value_type(self) -> str: ...  # string | int
    @property
    def join_keys(self) -> tuple[str, ...]: ...


def _bad_key(view: KeyedEntity, value: Any, why: str) -> InvalidRequest:
    shown = (
        value[:80]
        if isinstance(value, str)
        else value
        if isinstance(value, int | float)
        else repr(value)[:80]
    )
    return InvalidRequest(
        f"invalid key {shown!r} for entity {view.entity!r}: {why}", {"entity": view.entity, "key": shown}
    )


def key_part(view: KeyedEntity) -> KeyPart:
    """One join key's value as stored text (400 INVALID_REQUEST when it cannot be one)."""
    if view.entity_value_type == "int":

        def int_part(value: Any) -> str:
            kind = type(value)
            if kind is str and len(value) <= 24:
                try:
                    value, kind = int(value), int
                except ValueError:
                    raise _bad_key(view, value, "its keys are ints") from None
            elif kind is float and value.is_integer():
                value, kind = int(value), int
            if kind is int and INT64[0] <= value <= INT64[1]:
                return str(value)
            raise _bad_key(view, value, "its keys are 64-bit ints")

        return int_part

    def str_part(value: Any) -> str:
        kind = type(value)
        if kind is str:
            if len(value) > MAX_KEY or "\x00" in value:
                raise _bad_key(view, value, f"a key is at most {MAX_KEY} characters, without NUL")
            text: str = value
            return text
        if kind is int or kind is float:
            return str(value)
        raise _bad_key(view, value, "give a string")

    return str_part


def entity_keyer(view: KeyedEntity) -> Keyer:
    """A function from one requested entity (a bare value for a single join key, or an object
    holding every join key) to its stored key."""
    part = key_part(view)
    join_keys = view.join_keys
    if len(join_keys) == 1:
        only = join_keys[0]

        def single(raw: Any) -> str:
            if type(raw) is dict:
                if only not in raw:
                    raise _missing_keys(view, [only])
                raw = raw[only]
            return part(raw)

        return single

    def composite(raw: Any) -> str:
        if type(raw) is not dict:
            raise InvalidRequest(
                f"entity {view.entity!r} has join keys {list(join_keys)}: give an object with each",
                {"entity": view.entity, "join_keys": list(join_keys)},
            )
        missing = [k for k in join_keys if k not in raw]
        if missing:
            raise _missing_keys(view, missing)
        key = KEY_SEPARATOR.join([part(raw[k]) for k in join_keys])
        if len(key) > MAX_KEY:
            raise _bad_key(view, key, f"the joined key is at most {MAX_KEY} characters")
        return key

    return composite


def _missing_keys(view: KeyedEntity, missing: list[str]) -> InvalidRequest:
    return InvalidRequest(
        f"entity of {view.entity!r} is missing join keys {missing}",
        {"entity": view.entity, "join_keys": list(view.join_keys), "missing": missing},
    )
