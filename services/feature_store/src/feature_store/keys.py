"""Entity keys as the online and offline stores hold them: the one rule for ingestion, push and
serving (`FeatureSetView.entity_key` uses it too), built once per view as fast closures.

A single join key's value as text (ints normalized, `"042"` -> `"42"`), composite keys joined by
U+001F in the entity's join-key order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from feature_store.errors import InvalidRequest

if TYPE_CHECKING:
    from feature_store.registry.views import FeatureSetView

KEY_SEPARATOR = "\x1f"

KeyPart = Callable[[Any], str]
Keyer = Callable[[Any], str]


def _bad_key(view: FeatureSetView, value: Any, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid key {value!r} for entity {view.entity!r}: {why}",
        {"entity": view.entity, "key": value if isinstance(value, str | int | float) else repr(value)},
    )


def key_part(view: FeatureSetView) -> KeyPart:
    """One join key's value as stored text (400 INVALID_REQUEST when it cannot be one)."""
    if view.entity_value_type == "int":

        def int_part(value: Any) -> str:
            kind = type(value)
            if kind is int:
                return str(value)
            if kind is str:
                try:
                    return str(int(value))
                except ValueError:
                    raise _bad_key(view, value, "its keys are ints") from None
            if kind is float and value.is_integer():
                return str(int(value))
            raise _bad_key(view, value, "its keys are ints")

        return int_part

    def str_part(value: Any) -> str:
        kind = type(value)
        if kind is str:
            return value
        if kind is int or kind is float:
            return str(value)
        raise _bad_key(view, value, "give a string")

    return str_part


def entity_keyer(view: FeatureSetView) -> Keyer:
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
        return KEY_SEPARATOR.join([part(raw[k]) for k in join_keys])

    return composite


def _missing_keys(view: FeatureSetView, missing: list[str]) -> InvalidRequest:
    return InvalidRequest(
        f"entity of {view.entity!r} is missing join keys {missing}",
        {"entity": view.entity, "join_keys": list(view.join_keys), "missing": missing},
    )
