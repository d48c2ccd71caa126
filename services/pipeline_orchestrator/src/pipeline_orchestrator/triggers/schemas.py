"""Request and answer bodies of the trigger routes; every string, number and list bounded.

The single-item answers are those of `api/answers.py` (one OpenAPI component each, shared with the
routes that create schedules), filled from the JSON shapes of `api/serialize.py`. The pages are
written here: `items` first, as the routes have always answered."""

from __future__ import annotations

from typing import Any

from mlops_kit.bounds import JsonObject
from mlops_kit.bounds import NulFreeStr as Text
from mlops_kit.bounds import Tags as Labels
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline_orchestrator.api.answers import AlertRouteRead, AlertsHandled, RunRead, ScheduleRead

__all__ = [
    "Alert",
    "AlertManagerPayload",
    "AlertRouteCreate",
    "AlertRoutePage",
    "AlertRouteRead",
    "AlertsHandled",
    "RunRead",
    "SchedulePage",
    "ScheduleRead",
    "ScheduleUpdate",
    "WebhookCall",
]


class SchedulePage(BaseModel):
    items: list[ScheduleRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class AlertRoutePage(BaseModel):
    items: list[AlertRouteRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: Text | None = Field(default=None, min_length=1, max_length=120)
    timezone: Text | None = Field(default=None, max_length=64)
    parameters: JsonObject | None = None
    catchup: bool | None = None
    enabled: bool | None = None


class _OpenObject(BaseModel):
    """A body that keeps unknown fields (AlertManager's, a webhook caller's) but no more of them
    than its schema's `maxProperties` says."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 100})

    @model_validator(mode="before")
    @classmethod
    def _at_most_max_properties(cls, data: Any) -> Any:
        extra = cls.model_config.get("json_schema_extra")
        limit = extra.get("maxProperties") if isinstance(extra, dict) else None
        if isinstance(data, dict) and isinstance(limit, int) and len(data) > limit:
            raise ValueError(f"at most {limit} properties")
        return data


class WebhookCall(_OpenObject):
    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 1000})

    parameters: JsonObject = Field(default_factory=dict)


class AlertRouteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alertname: Text = Field(min_length=1, max_length=200)
    pipeline: Text = Field(min_length=1, max_length=100, description="a pipeline id or name")
    match: Labels = Field(default_factory=dict, description="labels the alert must carry")
    parameters: JsonObject = Field(
        default_factory=dict,
        description="run parameters; may use {{ alert.labels.x }} / {{ alert.annotations.x }}",
    )
    cooldown_seconds: float = Field(default=3600.0, ge=0, le=30 * 86_400)


class Alert(_OpenObject):
    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 100})

    status: Text = Field(default="firing", max_length=64)
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    startsAt: Text | None = Field(default=None, max_length=64)
    fingerprint: Text | None = Field(default=None, max_length=256)


class AlertManagerPayload(_OpenObject):
    """AlertManager's webhook body (version 4); fields we do not use are accepted and ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"maxProperties": 100})

    version: Text | None = Field(default=None, max_length=64)
    status: Text | None = Field(default=None, max_length=64)
    receiver: Text | None = Field(default=None, max_length=256)
    alerts: list[Alert] = Field(default_factory=list, max_length=1000)
