"""Automation rules: which incidents go to which channel, and which action to propose for them.

```yaml
rules:
  - name: ransomware-high
    when:
      severity: [high, critical]            # any of
      title_contains: [ransomware]          # any of, case-insensitive
      entity_kinds: [host]
    post:
      - {surface: slack, channel: C0SOC, mention: S0SOCONCALL}
      - {surface: teams, channel: "19:abc@thread.tacv2"}
    propose: {action: isolate, type: selective}
    auto: false                             # true only takes effect if the policy lists the rule in auto_rules
```

The file is validated at start; a bad file stops the bot with a message that names the bad key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from approvals.errors import RulesError
from approvals.incidents.payloads import SEVERITIES, IncidentData


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: list[str] = Field(default_factory=list)
    title_contains: list[str] = Field(default_factory=list)
    title_matches: str | None = None
    product: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    entity_kinds: list[str] = Field(default_factory=list)
    source: list[Literal["sentinel", "graph"]] = Field(default_factory=list)

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if v.lower() not in (*SEVERITIES, "unknown")]
        if bad:
            raise ValueError(f"unknown severity {bad}; use {', '.join(SEVERITIES)}")
        return [v.lower() for v in values]

    @field_validator("title_matches")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"title_matches is not a valid regular expression: {exc}") from None
        return value

    def match(self, incident: IncidentData) -> bool:
        title = incident.title.lower()
        lowered = {t.lower() for t in incident.tags}
        checks = [
            not self.severity or incident.severity in self.severity,
            not self.title_contains or any(w.lower() in title for w in self.title_contains),
            not self.title_matches or re.search(self.title_matches, incident.title, re.IGNORECASE) is not None,
            not self.product or (incident.product or "").lower() in {p.lower() for p in self.product},
            not self.tags or any(t.lower() in lowered for t in self.tags),
            not self.entity_kinds or any(k.lower() in incident.entity_kinds for k in self.entity_kinds),
            not self.source or incident.source in self.source,
        ]
        return all(checks)


class PostTo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    surface: Literal["slack", "teams", "console"]
    channel: str = Field(min_length=1)
    mention: str | None = None


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["isolate", "tag", "scan", "restrict", "collect"]
    type: Literal["full", "selective", "unmanaged"] = "full"
    tag: str | None = None

    @model_validator(mode="after")
    def _tag_needs_a_value(self) -> Proposal:
        if self.action == "tag" and not self.tag:
            raise ValueError("propose.action tag needs propose.tag")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    when: Conditions = Field(default_factory=Conditions)
    post: list[PostTo] = Field(min_length=1)
    propose: Proposal | None = None
    auto: bool = False
    #: propose releasing the devices isolated for the incident when it is closed
    release_on_close: bool = True


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        return self

    def matching(self, incident: IncidentData) -> list[Rule]:
        return [rule for rule in self.rules if rule.when.match(incident)]


def load_rules(path: Path | str | None) -> RuleSet:
    if path is None:
        return RuleSet()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"the rules file {path} is not valid YAML: {exc}") from None
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise RulesError(f"the rules file {path} is invalid:\n  " + "\n  ".join(lines)) from None
