"""The one command grammar every surface (Slack, Teams, console) feeds."""

from approvals.commands.models import (
    ActionCommand,
    CancelCommand,
    Command,
    DecisionCommand,
    DevicesCommand,
    HelpCommand,
    HistoryCommand,
    ParseError,
    StatusCommand,
    Target,
    TargetKind,
    Verb,
)

__all__ = [
    "ActionCommand",
    "CancelCommand",
    "Command",
    "DecisionCommand",
    "DevicesCommand",
    "HelpCommand",
    "HistoryCommand",
    "ParseError",
    "StatusCommand",
    "Target",
    "TargetKind",
    "Verb",
]
