"""Constrained types shared by the registry's schemas, defined once."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from mlops_kit.bounds import NO_NUL
from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME_RULE = "1-128 characters: letters, digits, '.', '_', '-', starting with a letter or digit"
VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)(\.(0|[1-9]\d*)){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
VERSION_RULE = "a semantic version like 1.2.3 (or 1, 1.2, v1.2.3-rc.1), at most 64 characters"
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
ALIAS_RULE = "1-64 characters: letters, digits, '_', '-', starting with a letter"
TAG_RULE = "1-256 characters, no commas"

FRAMEWORKS = {
    "scikit-learn": "scikit-learn",
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "pytorch": "pytorch",
    "torch": "pytorch",
    "onnx": "onnx",
    "jax": "jax",
    "huggingface": "huggingface",
    "transformers": "huggingface",
    "statsmodels": "statsmodels",
    "prophet": "prophet",
    "spark": "spark",
    "custom": "custom",
    "other": "other",
}
FORMATS = {
    "pkl": "pkl",
    "pickle": "pkl",
    "joblib": "joblib",
    "onnx": "onnx",
    "tensorflow-savedmodel": "tensorflow-savedmodel",
    "tensorflow savedmodel": "tensorflow-savedmodel",
    "savedmodel": "tensorflow-savedmodel",
    "saved_model": "tensorflow-savedmodel",
    "pytorch": "pytorch",
    "pt": "pytorch",
    "pth": "pytorch",
    "torchscript": "pytorch",
    "xgboost-json": "xgboost-json",
    "xgboost-ubj": "xgboost-ubj",
    "ubj": "xgboost-ubj",
    "lightgbm-txt": "lightgbm-txt",
    "catboost-cbm": "catboost-cbm",
    "cbm": "catboost-cbm",
    "keras": "keras",
    "keras-h5": "keras-h5",
    "h5": "keras-h5",
    "safetensors": "safetensors",
    "other": "other",
}
DEFAULT_FORMAT = {
    "onnx": "onnx",
    "tensorflow": "tensorflow-savedmodel",
    "keras": "tensorflow-savedmodel",
    "pytorch": "pytorch",
}


def default_format(framework: str) -> str:
    """The format a version gets when none is declared and its files tell nothing."""
    return DEFAULT_FORMAT.get(framework, "pkl")


STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
RESERVED_VERSIONS = {"latest"}


def _check(regex: re.Pattern[str], rule: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"invalid {what} {value[:80]!r}: {rule}")
        return value

    return check


def _choice(table: dict[str, str], what: str) -> Callable[[object], str]:
    def pick(value: object) -> str:
        if not isinstance(value, str) or value.strip().lower() not in table:
            allowed = sorted(set(table.values()))
            raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
        return table[value.strip().lower()]

    return pick


def _tag(value: str) -> str:
    if not value or len(value) > 256 or "," in value:
        raise ValueError(f"invalid tag {value[:80]!r}: {TAG_RULE}")
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def iso_utc(value: datetime) -> str:
    return _utc(value).isoformat()


def documented(regex: re.Pattern[str], rule: str, max_length: int) -> WithJsonSchema:
    """The OpenAPI states the rule the validator enforces (schemathesis generates from it)."""
    return WithJsonSchema(
        {"type": "string", "pattern": regex.pattern, "maxLength": max_length, "description": rule}
    )


def one_of(choices: dict[str, str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": sorted(choices)})


# the regexes bound lengths; the schema says so too
ModelName = Annotated[
    str,
    Field(max_length=128),
    AfterValidator(_check(NAME_RE, NAME_RULE, "model name")),
    documented(NAME_RE, NAME_RULE, 128),
]
VersionStr = Annotated[
    str,
    Field(max_length=64),
    AfterValidator(_check(VERSION_RE, VERSION_RULE, "version")),
    documented(VERSION_RE, VERSION_RULE, 64),
]
AliasName = Annotated[
    str,
    Field(max_length=64),
    AfterValidator(_check(ALIAS_RE, ALIAS_RULE, "alias")),
    documented(ALIAS_RE, ALIAS_RULE, 64),
]
Framework = Annotated[str, BeforeValidator(_choice(FRAMEWORKS, "framework")), one_of(FRAMEWORKS)]
ArtifactFormat = Annotated[str, BeforeValidator(_choice(FORMATS, "format")), one_of(FORMATS)]
Stage = Annotated[str, BeforeValidator(_choice(STAGES, "stage")), one_of(STAGES)]
Tag = Annotated[str, Field(max_length=256), NO_NUL, AfterValidator(_tag)]
UtcDatetime = Annotated[datetime, PlainSerializer(iso_utc, return_type=str)]


def check_name(value: str) -> str:
    return _check(NAME_RE, NAME_RULE, "model name")(value)


def check_alias(value: str) -> str:
    return _check(ALIAS_RE, ALIAS_RULE, "alias")(value)
