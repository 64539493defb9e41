"""The policy file's shape (pydantic): validated at start, every error names its YAML path."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from approvals.verbs import POLICY_VERBS

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

    _principals = field_validator("break_glass")(_check_principals)


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


class PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: ActionPolicy = Field(default_factory=ActionPolicy)
    actions: dict[str, ActionPolicy] = Field(default_factory=dict)
    protection: ProtectionPolicy = Field(default_factory=ProtectionPolicy)
    channels: dict[str, ChannelPolicy] = Field(default_factory=dict)
    #: who may run admin chat commands (``doctor``); nobody by default
    admins: list[str] = Field(default_factory=list)

    _principals = field_validator("admins")(_check_principals)

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, values: dict[str, ActionPolicy]) -> dict[str, ActionPolicy]:
        for key in values:
            if key not in POLICY_VERBS:
                raise ValueError(f"'{key}' is not an action; use {', '.join(POLICY_VERBS)}")
        return values
