"""``mde-chatops doctor``: check a deployment from the outside in, one line per check.

Settings, policy, database and schema (``config``), an MDE token and the application permissions its
``roles`` claim grants for the actions the policy enables, and the Microsoft Graph token advanced hunting uses
(``query:`` targets, schedules) with its ``ThreatHunting.Read.All`` (``entra``), one cheap MDE call and the
optional ``Alert.Read.All`` riskiest first reads alerts with (``reachability``), and the enabled chat
platforms (``chat``); ``runner`` orders them and ``report`` formats them. Every failure is one actionable
sentence; nothing raises, nothing prints a secret (the token's claims are decoded without verifying its
signature, and only role names and the audience are shown).

``doctor_report`` returns the same report as text for the chat ``doctor`` command.
"""

from __future__ import annotations

from bot.doctor.config import enabled_verbs
from bot.doctor.entra import Permission, required_permissions
from bot.doctor.report import Check, render
from bot.doctor.runner import Doctor, doctor_report, main, run_checks

__all__ = [
    "Check",
    "Doctor",
    "Permission",
    "doctor_report",
    "enabled_verbs",
    "main",
    "render",
    "required_permissions",
    "run_checks",
]
