"""Alertmanager's webhook body (version 4), validated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(moment: datetime | None) -> datetime | None:
    """Times without a zone are UTC (Alertmanager's own are always zoned); all are UTC
    afterwards, so the alerts of one group compare and store alike."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


UtcTime = Annotated[datetime | None, AfterValidator(_utc)]


class Alert(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcTime = Field(None, alias="startsAt")
    ends_at: UtcTime = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = ""


class Notification(BaseModel):
    """One notification: an alert group at one moment."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    version: Literal["4"]
    group_key: str = Field(..., min_length=1, alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[Alert] = Field(..., min_length=1)

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def title(self) -> str:
        """``AlertName`` (or several names), with the group's other labels."""
        names = sorted({a.labels.get("alertname", "alert") for a in self.alerts})
        rest = {k: v for k, v in self.group_labels.items() if k != "alertname"}
        label_text = " ".join(f"{k}={v}" for k, v in sorted(rest.items()))
        return f"{', '.join(names)}" + (f" ({label_text})" if label_text else "")

    @property
    def severity(self) -> str:
        return self.common_labels.get("severity", "")

    def started(self) -> datetime | None:
        times = [a.starts_at for a in self.alerts if a.starts_at is not None]
        return min(times) if times else None
