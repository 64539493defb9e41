"""Policy checks. Every answer is a ``Verdict`` whose reason is a sentence a person can act on."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from approvals.errors import Verdict
from approvals.identity import Actor
from approvals.policy.models import ActionPolicy, PolicyModel
from approvals.policy.protection import Classifier, Protection, classify
from approvals.verbs import POLICY_VERBS, Verb
from mde.models import Machine


def principals_of(actor: Actor) -> set[str]:
    """Every principal string this actor matches in a policy file."""
    out = {f"{actor.platform}:{actor.user_id}", "*"}
    if actor.email:
        out.add(f"email:{actor.email.lower()}")
    group_kind = {"slack": "slack-group", "teams": "entra-group"}.get(actor.platform)
    if group_kind:
        out.update(f"{group_kind}:{g}" for g in actor.groups)
    return out


def _matches(actor: Actor, principals: list[str]) -> bool:
    mine = principals_of(actor)
    return any(p.lower() in {m.lower() for m in mine} for p in principals)


class Policy:
    def __init__(self, model: PolicyModel, *, name: str = "policy") -> None:
        self.model = model
        self.name = name

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, name: str = "policy") -> Policy:
        return cls(PolicyModel.model_validate(data), name=name)

    @classmethod
    def default(cls) -> Policy:
        """No policy file: nobody may request or approve anything (the safe choice)."""
        return cls(PolicyModel(), name="built-in default (nobody is allowed; configure POLICY_FILE)")

    @classmethod
    def demo(cls) -> Policy:
        """The console demo: alice, bob and carol request and approve; dave holds break-glass."""
        users = ["console:alice", "console:bob", "console:carol", "console:dave"]
        return cls.from_dict(
            {
                "defaults": {
                    "requesters": users,
                    "approvers": users,
                    "thresholds": [{"above": 50, "approvals": 2}],
                },
                "protection": {"break_glass": ["console:dave"]},
                "admins": ["console:dave"],
            },
            name="demo",
        )

    def action(self, verb: Verb) -> ActionPolicy:
        if verb == Verb.SCHEDULE and verb not in self.model.actions:
            verb = Verb.TAG  # a schedule tags devices: the tag rules apply unless the policy sets its own
        if verb == Verb.UNBLOCK and verb not in self.model.actions:
            verb = Verb.BLOCK  # unblock follows the block rules unless the policy sets its own
        return self.model.actions.get(verb, self.model.defaults)

    def is_admin(self, actor: Actor) -> bool:
        """May run admin chat commands (``doctor``): listed under ``admins:``, nobody by default."""
        return _matches(actor, self.model.admins)

    def can_request(self, actor: Actor, verb: Verb, *, surface: str, channel_id: str) -> Verdict:
        if verb not in POLICY_VERBS:
            return Verdict(True, "read-only commands need no approval")
        channel = self.model.channels.get(f"{surface}:{channel_id}")
        if channel is not None and verb not in channel.allow:
            allowed = ", ".join(channel.allow) or "nothing"
            return Verdict(False, f"{verb} is not allowed in this channel; here you may request: {allowed}.")
        rules = self.action(verb)
        if not rules.requesters:
            return Verdict(
                False,
                f"Nobody may request {verb} yet: an operator must list requesters in the "
                "policy file (see docs/configure-approvals.md).",
            )
        if not _matches(actor, rules.requesters):
            return Verdict(
                False,
                f"You may not request {verb}: you are {actor.key}, and the policy allows "
                f"{', '.join(rules.requesters)}.",
            )
        return Verdict(True, "allowed")

    def max_devices(self, verb: Verb) -> int:
        return self.action(verb).max_devices

    def required_approvals(self, verb: Verb, device_count: int) -> int:
        rules = self.action(verb)
        needed = rules.approvals
        for threshold in rules.thresholds:
            if device_count > threshold.above:
                needed = max(needed, threshold.approvals)
        return needed

    def expiry_for(self, verb: Verb) -> timedelta:
        return self.action(verb).expiry

    def can_approve(
        self,
        actor: Actor,
        *,
        verb: Verb,
        requester_key: str,
        surface: str,
        channel_id: str,
        already_approved_by: Collection[str] = (),
        touches_protected: bool = False,
        break_glass: bool = False,
        requester_email: str | None = None,
    ) -> Verdict:
        email = (actor.email or "").lower()
        if actor.key == requester_key or (email and requester_email and email == requester_email.lower()):
            return Verdict(False, "You can't approve your own request: a second person must.")
        if actor.key in already_approved_by or (email and f"email:{email}" in already_approved_by):
            return Verdict(False, "You already approved this request; another approver is needed.")
        rules = self.action(verb)
        if not _matches(actor, rules.approvers):
            listed = ", ".join(rules.approvers) or "nobody (configure approvers)"
            return Verdict(False, f"Approving {verb} needs one of: {listed}; you are {actor.key}.")
        if touches_protected and break_glass and not self.can_break_glass(actor):
            return Verdict(False, "Protected devices need an approver with the break-glass role.")
        return Verdict(True, "allowed")

    def can_break_glass(self, actor: Actor) -> bool:
        return _matches(actor, self.model.protection.break_glass)

    def classify(self, machine: Machine) -> Protection:
        return classify(machine, self.model.protection)

    def classifier(self) -> Classifier:
        """``classify`` for many devices: the rules as they are now, compiled once."""
        return Classifier(self.model.protection)

    def allows_auto(self, rule_name: str, verb: Verb) -> bool:
        return rule_name in self.action(verb).auto_rules
