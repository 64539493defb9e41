"""The policy file's shape (pydantic): validated at start, every error names its YAML path."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from approvals.verbs import POLICY_VERBS

NEVER_BLOCK_KINDS = ("domain", "ip", "hash", "url")
PRINCIPAL = re.compile(r"^(\*|(slack|teams|console|playground|email|slack-group|entra-group):.+)$")


def _check_principals(values: list[str]) -> list[str]:
    for value in values:
        if not PRINCIPAL.match(value):
            raise ValueError(
                f"'{value}' is not a principal; use slack:U…, teams:<entra-object-id>, email:…, "
                "slack-group:S…, entra-group:<guid>, console:NAME, playground:<id> or *"
            )
    return values


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    above: int = Field(ge=0, description="more devices than this…")
    approvals: int = Field(ge=1, le=5, description="…need this many approvals")


class ActionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requesters: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    approvals: int = Field(1, ge=1, le=5)
    thresholds: list[Threshold] = Field(default_factory=lambda: [Threshold(above=50, approvals=2)])
    max_devices: int = Field(500, ge=1, le=100000)
    expiry_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    auto_rules: list[str] = Field(default_factory=list, description="notification rules allowed to act alone")

    _principals = field_validator("requesters", "approvers")(_check_principals)

    @property
    def expiry(self) -> timedelta:
        return timedelta(minutes=self.expiry_minutes)


class ProtectionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protected_tags: list[str] = Field(default_factory=lambda: ["Restricted security operations"])
    protected_groups: list[str] = Field(default_factory=list)
    protected_names: list[str] = Field(default_factory=list, description="glob patterns, e.g. dc-*")
    warn_tags: list[str] = Field(default_factory=lambda: ["Hyper-V Host"])
    warn_names: list[str] = Field(default_factory=lambda: ["*hyperv*", "hv-*"])
    warn_reason: str = "Hyper-V host: isolating it cuts off every guest VM"
    break_glass: list[str] = Field(default_factory=list)
    #: indicators the bot never submits: domain:NAME (and its subdomains), ip:ADDRESS or ip:RANGE/BITS,
    #: hash:HEX, url:PREFIX
    never_block: list[str] = Field(default_factory=list)
    #: address ranges the organisation relies on (partners, SaaS egress): blocking an IP inside one warns
    allowlisted_ip_ranges: list[str] = Field(default_factory=list)
    #: a file MDE saw on more devices than this (last 30 days): the block card warns it is common
    common_file_devices: int = Field(20, ge=1)

    _principals = field_validator("break_glass")(_check_principals)

    @field_validator("never_block")
    @classmethod
    def _never_block(cls, values: list[str]) -> list[str]:
        for value in values:
            kind, sep, rest = value.partition(":")
            if not sep or kind not in NEVER_BLOCK_KINDS or not rest.strip():
                raise ValueError(
                    f"'{value}' is not an indicator rule; use domain:NAME, ip:ADDRESS[/BITS], hash:HEX or url:PREFIX"
                )
            if kind == "ip":
                _network(rest)
        return values

    @field_validator("allowlisted_ip_ranges")
    @classmethod
    def _ranges(cls, values: list[str]) -> list[str]:
        for value in values:
            _network(value)
        return values


def _network(value: str) -> None:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"'{value}' is not an IP address or range like 198.51.100.0/24") from None


class IndicatorPolicy(BaseModel):
    """Caps for block/unblock (tenant-wide indicators)."""

    model_config = ConfigDict(extra="forbid")
    #: an indicator without --for expires after this many days
    default_days: int = Field(30, ge=1, le=3650)
    #: --for may not exceed this
    max_days: int = Field(90, ge=1, le=3650)
    #: active indicators this bot created, at most (MDE allows 15,000 per tenant)
    max_active: int = Field(500, ge=1, le=15000)
    #: the indicators' ``application`` field: how ``indicators`` finds what this bot created
    application: str = Field("mde-chatops", min_length=1, max_length=100)


class ChannelPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allow: list[str]

    @field_validator("allow")
    @classmethod
    def _verbs(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in POLICY_VERBS:
                raise ValueError(f"'{value}' is not an action; use {', '.join(POLICY_VERBS)}")
        return values


SPAN = re.compile(r"^(\d{1,4})([mhdw])$")
SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ContainmentPolicy(BaseModel):
    """Time-boxed isolation and reminders (docs/containment-register.md)."""

    model_config = ConfigDict(extra="forbid")
    #: at a time-boxed isolation's planned end: ``propose`` a release (one approval), or ``auto_at_end``:
    #: the release is pre-approved when the isolation is requested, and runs at the end without a person
    release: str = Field("propose", pattern="^(propose|auto_at_end)$")
    #: a containment older than this gets a reminder in its thread, then one a day, until released or
    #: acknowledged with a reason
    remind_after: str = "24h"

    @field_validator("remind_after")
    @classmethod
    def _span(cls, value: str) -> str:
        if not SPAN.match(value.strip().lower()):
            raise ValueError(f"'{value}' is not a span; use e.g. 30m, 24h, 3d or 2w")
        return value.strip().lower()

    @property
    def remind_after_delta(self) -> timedelta:
        match = SPAN.match(self.remind_after)
        assert match is not None
        return timedelta(**{SPAN_UNITS[match.group(2)]: int(match.group(1))})


class PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: ActionPolicy = Field(default_factory=ActionPolicy)
    actions: dict[str, ActionPolicy] = Field(default_factory=dict)
    protection: ProtectionPolicy = Field(default_factory=ProtectionPolicy)
    channels: dict[str, ChannelPolicy] = Field(default_factory=dict)
    indicators: IndicatorPolicy = Field(default_factory=IndicatorPolicy)
    #: who may run admin chat commands (``doctor``); nobody by default
    admins: list[str] = Field(default_factory=list)
    containment: ContainmentPolicy = Field(default_factory=ContainmentPolicy)

    _principals = field_validator("admins")(_check_principals)

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, values: dict[str, ActionPolicy]) -> dict[str, ActionPolicy]:
        for key in values:
            if key not in POLICY_VERBS:
                raise ValueError(f"'{key}' is not an action; use {', '.join(POLICY_VERBS)}")
        return values
