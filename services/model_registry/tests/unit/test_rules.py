from __future__ import annotations

import pytest
from mlops_kit.errors import RangeNotSatisfiable, Unprocessable
from model_registry.artifacts.service import check_path, parse_range
from model_registry.errors import InvalidFilter
from model_registry.models.service import parse_metric_filters, parse_order, parse_tags
from model_registry.types import ALIAS_RE, NAME_RE, VERSION_RE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("accuracy>0.9", ("accuracy", ">", 0.9)),
        ("f1_score >= 0.5", ("f1_score", ">=", 0.5)),
        ("loss<1e-3", ("loss", "<", 0.001)),
        ("auc!=-1", ("auc", "!=", -1.0)),
    ],
)
def test_metric_filters_parse(raw: str, expected: tuple) -> None:
    assert parse_metric_filters([raw]) == [expected]


def test_metric_filters_split_on_commas() -> None:
    assert len(parse_metric_filters(["a>1,b<2", "c=3"])) == 3


@pytest.mark.parametrize("raw", ["accuracy", "accuracy>>1", ">0.9", "acc>high", "a>1.2.3"])
def test_bad_metric_filters_raise(raw: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_metric_filters([raw])


def test_tags_and_order() -> None:
    assert parse_tags(["a,b", " c "]) == ["a", "b", "c"]
    assert parse_order("-created_at", ("name", "created_at")) == ("created_at", True)
    assert parse_order("name asc", ("name",)) == ("name", False)
    assert parse_order("metric:auc", ("version",)) == ("metric:auc", False)
    with pytest.raises(InvalidFilter):
        parse_order("metric:auc", ("name",))


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-5", 100, (95, 99)),
        ("bytes=50-500", 100, (50, 99)),
        ("bytes=-500", 100, (0, 99)),
    ],
)
def test_ranges(header: str, size: int, span: tuple[int, int]) -> None:
    parsed = parse_range(header, size)
    assert parsed is not None and (parsed.start, parsed.end) == span


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "items=0-1", "bytes=-", "bytes=0-1,5-6"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


@pytest.mark.parametrize("path", ["model.pkl", "dir/sub/file.bin", "a b/c.txt"])
def test_good_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize("path", ["", "/abs", "a//b", "../x", "a/./b", "a\\b", "x" * 513])
def test_bad_paths(path: str) -> None:
    with pytest.raises(Unprocessable):
        check_path(path)


def test_name_version_alias_rules() -> None:
    assert NAME_RE.fullmatch("my-classifier_v1.2")
    assert not NAME_RE.fullmatch("-lead") and not NAME_RE.fullmatch("a" * 129)
    assert not NAME_RE.fullmatch("with@at")
    for ok in ("1", "1.2", "1.2.3", "v1.0", "1.0.0-rc.1+build.5"):
        assert VERSION_RE.fullmatch(ok), ok
    for bad in ("latest", "01.2", "1.2.3.4", "one"):
        assert not VERSION_RE.fullmatch(bad), bad
    assert ALIAS_RE.fullmatch("champion") and not ALIAS_RE.fullmatch("1st")
