"""Online serving logic without I/O: records, entity keys, answers, push checks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from feature_store.errors import InvalidRequest
from feature_store.keys import KEY_SEPARATOR, entity_keyer
from feature_store.online.base import newest_per_entity, pack, unpack
from feature_store.online.push import rows_of
from feature_store.online.serving import make_plan, render
from feature_store.registry.views import FeatureDef, FeatureSetView

HOUR_US = 3_600_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def make_view(
    set_id: int = 1,
    name: str = "user_features",
    features: tuple[FeatureDef, ...] = (FeatureDef("age", "int"), FeatureDef("score", "float")),
    *,
    join_keys: tuple[str, ...] = ("user_id",),
    value_type: str = "string",
    ttl_seconds: int | None = None,
) -> FeatureSetView:
    return FeatureSetView(set_id, name, "user", join_keys, value_type, ttl_seconds, 1, 1, {1: features})


def answer(
    view_pairs: list[tuple[FeatureSetView, FeatureDef]], entities: list[Any], records: list[Any]
) -> Any:
    return orjson.loads(render(make_plan(view_pairs), entities, records, T0))


def test_records_pack_and_unpack_with_negative_times() -> None:
    assert unpack(pack(-5, 7, {"a": [1.5], "b": "x y"})) == (-5, 7, {"a": [1.5], "b": "x y"})


def test_newest_per_entity_prefers_event_then_created_then_later_in_batch() -> None:
    rows = [("u", 2, 1, {"n": 1}), ("u", 2, 3, {"n": 2}), ("u", 1, 9, {"n": 3}), ("u", 2, 3, {"n": 4})]
    assert newest_per_entity(rows) == [("u", 2, 3, {"n": 4})]


def test_entity_keys_normalize_ints_and_join_composite_keys() -> None:
    ints = entity_keyer(make_view(value_type="int"))
    assert [ints(v) for v in (42, "042", -3, 7.0, {"user_id": "5"})] == ["42", "42", "-3", "7", "5"]
    for bad in ("4x", 4.5, True, None, [1]):
        with pytest.raises(InvalidRequest):
            ints(bad)
    pair = entity_keyer(make_view(join_keys=("user_id", "merchant_id")))
    assert pair({"merchant_id": "m", "user_id": "u"}) == "u" + KEY_SEPARATOR + "m"
    with pytest.raises(InvalidRequest, match="merchant_id"):
        pair({"user_id": "u"})
    with pytest.raises(InvalidRequest, match="give an object"):
        pair("u")


def test_answer_statuses_on_the_fast_and_the_general_path() -> None:
    ttl_view = make_view(ttl_seconds=3600)
    pairs = [(ttl_view, f) for f in ttl_view.features()]
    records = [
        (T0 - HOUR_US, 0, {"age": 1, "score": 0.5}),  # exactly at the TTL: still present
        (T0 - HOUR_US - 1, 0, {"age": 2, "score": 0.5}),  # one µs past it: expired
        (T0, 0, {"age": 3}),  # lacks score
        None,
        (T0, 0, {"age": None, "score": 1.0}),  # a null value
    ]
    body = answer(pairs, ["a", "b", "c", "d", "e"], records)
    assert body["features"] == ["age", "score"]
    assert [r["statuses"] for r in body["results"]] == [
        {"age": "PRESENT", "score": "PRESENT"},
        {"age": "EXPIRED", "score": "EXPIRED"},
        {"age": "PRESENT", "score": "MISSING"},
        {"age": "MISSING", "score": "MISSING"},
        {"age": "MISSING", "score": "PRESENT"},
    ]
    assert [r["values"]["age"] for r in body["results"]] == [1, None, 3, None, None]
    assert body["results"][1]["event_timestamps"]["age"] == "2025-12-31T22:59:59.999999Z"
    assert body["results"][2]["event_timestamps"] == {"age": "2026-01-01T00:00:00Z", "score": None}


def test_answers_across_sets_key_shared_names_by_set_and_present_timestamps() -> None:
    users = make_view(features=(FeatureDef("age", "int"), FeatureDef("seen", "timestamp")))
    risk = make_view(2, "risk", (FeatureDef("age", "int"), FeatureDef("score", "float")))
    pairs = [(users, users.feature("age")), (risk, risk.feature("score")), (risk, risk.feature("age"))]
    pairs.append((users, users.feature("seen")))
    records = [(T0, 0, {"age": 30, "seen": T0 + 1}), (T0 - 1, 0, {"age": 99, "score": 0.1}), None, None]
    body = answer(pairs, ["u", "v"], records)
    assert body["features"] == ["user_features:age", "score", "risk:age", "seen"]
    assert body["feature_refs"] == ["user_features:age", "risk:score", "risk:age", "user_features:seen"]
    first = body["results"][0]
    assert list(first["values"]) == body["features"]
    assert first["values"] == {
        "user_features:age": 30,
        "score": 0.1,
        "risk:age": 99,
        "seen": "2026-01-01T00:00:00.000001Z",
    }
    assert first["event_timestamps"]["score"] == "2025-12-31T23:59:59.999999Z"
    assert set(body["results"][1]["statuses"].values()) == {"MISSING"}


def test_a_plan_without_features_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        make_plan([])


def test_push_bodies_are_one_row_a_list_or_rows() -> None:
    assert rows_of({"rows": [1]}) == [1] and rows_of([{"a": 1}]) == [{"a": 1}]
    assert rows_of({"user_id": "u"}) == [{"user_id": "u"}]
    for bad in ("text", {"rows": []}, []):
        with pytest.raises(InvalidRequest):
            rows_of(bad)
