"""The ``schedule`` sub-commands: tag, list, remove, run. Same error style as the rest of the grammar."""

from __future__ import annotations

from approvals.commands.cadence import EXAMPLES, parse_cadence
from approvals.commands.models import (
    Command,
    ParseError,
    ScheduleCreateCommand,
    ScheduleListCommand,
    ScheduleRemoveCommand,
    ScheduleRunCommand,
    TargetKind,
)
from approvals.commands.spec import MAX_TAG
from approvals.commands.suggest import closest
from approvals.commands.tokens import Token, clean, parse_targets

SUBCOMMANDS = ("tag", "list", "remove", "run")
SUB_ALIASES = {"ls": "list", "delete": "remove", "rm": "remove", "add": "tag", "create": "tag"}
OVERVIEW = (
    'schedule tag "TAG" query:"<KQL returning DeviceId>" every fri 06:00 --reason "…", schedule list, '
    'schedule remove ID --reason "…" or schedule run ID'
)
QUERY_ONLY = (
    'A schedule finds its devices with one hunting query: use query:"<KQL returning DeviceId>" '
    "(device:, tag:, group:, ip: and incident: targets cannot be scheduled)."
)


def build_schedule(positional: list[Token], options: dict[str, str | None]) -> Command:
    if not positional:
        raise ParseError(f"schedule needs a sub-command: {OVERVIEW}.")
    head = positional[0]
    word = head.text.lower()
    sub = SUB_ALIASES.get(word, word)
    if sub not in SUBCOMMANDS:
        hint = closest(word, [*SUBCOMMANDS, *SUB_ALIASES])
        hint = SUB_ALIASES.get(hint, hint) if hint else None
        suggestion = f" Did you mean schedule {hint}?" if hint else f" Use {OVERVIEW}."
        raise ParseError(
            f"'{head.text}' is not a schedule command.{suggestion}", token=head.text, position=head.pos, suggestion=hint
        )
    rest = positional[1:]
    reason = options.get("reason")
    reason = reason.strip() if reason else None
    if sub != "tag" and "sync" in options:
        raise ParseError("--sync applies to schedule tag only.")
    if sub == "list":
        if rest or options:
            raise ParseError("schedule list takes nothing more; try schedule list.")
        return ScheduleListCommand()
    if sub in ("remove", "run"):
        schedule_id = _schedule_id(rest[0] if rest else None, sub)
        if len(rest) > 1:
            extra = rest[1]
            raise ParseError(
                f"Unexpected '{extra.text}' after the schedule number.", token=extra.text, position=extra.pos
            )
        if sub == "run":
            return ScheduleRunCommand(schedule_id=schedule_id, reason=reason)
        if reason is None:
            raise ParseError(f'schedule remove needs --reason "…", e.g. schedule remove {schedule_id} --reason "…".')
        return ScheduleRemoveCommand(schedule_id=schedule_id, reason=reason)
    return _create(rest, reason, sync="sync" in options)


def _schedule_id(token: Token | None, sub: str) -> int:
    if token is None:
        raise ParseError(f"schedule {sub} needs a schedule number, e.g. schedule {sub} 3 (schedule list shows them).")
    raw = token.text.strip().lstrip("#")
    if not raw.isdigit() or len(raw) > 12:
        raise ParseError(
            f"'{token.text}' is not a schedule number; schedule list shows them, e.g. schedule {sub} 3.",
            token=token.text,
            position=token.pos,
        )
    return int(raw)


def _create(rest: list[Token], reason: str | None, *, sync: bool) -> ScheduleCreateCommand:
    example = 'schedule tag "Domain Controllers" query:"…" every fri 06:00 --reason "…"'
    if not rest:
        raise ParseError(f"schedule tag needs the tag first, e.g. {example}.")
    first = rest.pop(0)
    tag_value = clean(first.text, first)
    if not tag_value or len(tag_value) > MAX_TAG:
        raise ParseError(f"A tag must be 1 to {MAX_TAG} characters.", token=first.text[:40], position=first.pos)
    if not first.quoted and tag_value.split(":", 1)[0].lower() in {k.value for k in TargetKind} and ":" in tag_value:
        raise ParseError(
            f"schedule tag needs the tag value before the query, e.g. {example}.", token=first.text, position=first.pos
        )
    every = next((i for i, t in enumerate(rest) if t.text.lower() == "every" and not t.quoted), None)
    if every is None:
        raise ParseError(f"schedule tag needs a cadence after the query: {EXAMPLES} (UTC).")
    target_tokens, cadence_words = rest[:every], _join_lists([t.text for t in rest[every + 1 :]])
    targets = [t for token in target_tokens for t in parse_targets(token)]
    if not targets:
        raise ParseError(f'schedule tag needs query:"<KQL returning DeviceId>" before every, e.g. {example}.')
    if any(t.kind is not TargetKind.QUERY for t in targets):
        raise ParseError(QUERY_ONLY)
    if len(targets) > 1:
        raise ParseError("One query per schedule; combine them in KQL (union, or) or create two schedules.")
    cadence = parse_cadence(cadence_words)
    if reason is None:
        raise ParseError('schedule tag needs --reason "…": approvers see it on the card and the audit log keeps it.')
    return ScheduleCreateCommand(tag_value=tag_value, query=targets[0].value, cadence=cadence, reason=reason, sync=sync)


def _join_lists(words: list[str]) -> list[str]:
    """``mon, thu 06:00`` arrives as ``mon,`` ``thu`` ``06:00``: glue the comma-separated days back."""
    out: list[str] = []
    for word in words:
        if out and (out[-1].endswith(",") or word.startswith(",")):
            out[-1] += word
        else:
            out.append(word)
    return out
