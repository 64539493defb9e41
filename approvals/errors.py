"""The errors of ``approvals/``: everything that becomes one sentence for a person (house style 14).

Raised: a ``UserError`` subclass whose ``message`` is shown as is. ``ChatOps.handle`` catches the base once
(parse, resolution, schedule query); the CLI, ``doctor`` and the webhook show the operator ones (policy file,
rules file, incident payload). Returned: a ``Verdict``, when a refusal is an expected answer (a policy
check, a decision on a request that is no longer pending).

    UserError
    ├── ParseError          the command does not parse
    ├── ResolutionError     a target resolves to nothing usable
    ├── ScheduleQueryError  the hunting query cannot drive a schedule
    ├── PolicyError         the policy file is invalid
    ├── RulesError          the incident rules file is invalid
    ├── PayloadError        an incident webhook body cannot be read
    └── DatabaseUrlError    DATABASE_URL cannot be read (never repeats the value)
"""

from __future__ import annotations

from dataclasses import dataclass


class UserError(Exception):
    """Bad input or a refusal the person can act on; ``message`` is the sentence shown to them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ParseError(UserError, ValueError):
    """A command that does not parse; ``message`` is shown to the user as is."""

    def __init__(
        self,
        message: str,
        *,
        token: str | None = None,
        position: int | None = None,
        suggestion: str | None = None,
    ) -> None:
        super().__init__(message)
        self.token = token
        self.position = position
        self.suggestion = suggestion


class ResolutionError(UserError):
    """A target that cannot be resolved (unknown tag, no such device, an incident never received)."""


class ScheduleQueryError(UserError):
    """The hunting query cannot drive a schedule (no DeviceId column, MDE refused it)."""


class PolicyError(UserError):
    """An invalid policy file; the message names the YAML path."""


class RulesError(UserError, ValueError):
    """The incident rules file is invalid; the message names the problem."""


class PayloadError(UserError, ValueError):
    """The body is not an incident we can read; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """An answer that may be a refusal: whether it went ahead, the sentence to show, and the request it is
    about (if any). Policy checks and request decisions return one; nothing is raised for an expected no."""

    allowed: bool
    reason: str
    request_id: int | None = None


class DatabaseUrlError(UserError, ValueError):
    """``DATABASE_URL`` cannot be read. The message names the setting and never repeats the value: it
    usually holds a password."""

    user_facing = True
