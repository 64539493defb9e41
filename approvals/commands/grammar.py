"""Parse one chat line into a typed command. Every failure is a ``ParseError`` with one or two plain
sentences that quote the offending token and suggest the fix; nothing else ever escapes."""

from __future__ import annotations

from approvals.commands import files
from approvals.commands.containment import build_containment, time_box
from approvals.commands.indicators import build as build_indicator
from approvals.commands.models import (
    ActionCommand,
    CancelCommand,
    Command,
    DecisionCommand,
    DevicesCommand,
    DoctorCommand,
    HelpCommand,
    HistoryCommand,
    ParseError,
    StatusCommand,
    Target,
    TargetKind,
    Verb,
)
from approvals.commands.schedules import build_schedule
from approvals.commands.spec import ALIASES, MAX_CANARY, MAX_INPUT, MAX_TAG, VERBS, OptionSpec, VerbSpec
from approvals.commands.suggest import closest
from approvals.commands.tokens import Token, clean, parse_targets, tokenize

ISOLATION_TYPES = {
    "full": "Full",
    "selective": "Selective",
    "unmanaged": "UnManagedDevice",
    "unmanageddevice": "UnManagedDevice",
}


def _request_id(token: Token | None, verb: Verb) -> int:
    if token is None:
        raise ParseError(f"{verb.value} needs a request number, e.g. `{verb.value} 12`.")
    raw = token.text.strip().lstrip("#")
    if raw[:1] in ("R", "r"):
        raw = raw[1:]
    if not raw.isdigit() or len(raw) > 12:
        raise ParseError(
            f"'{token.text}' is not a request number; use the number on the card, e.g. 12 or #12.",
            token=token.text,
            position=token.pos,
        )
    return int(raw)


def _int_option(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise ParseError(f"--{name} takes a whole number from {low} to {high}, not '{value}'.", token=value)
    return int(value)


def _verb(token: Token) -> Verb:
    word = token.text.lower()
    if word in ALIASES:
        return ALIASES[word]
    try:
        return Verb(word)
    except ValueError:
        hint = closest(word, [v.value for v in Verb])
        suggestion = f" Did you mean `{hint}`?" if hint else " Type `help` for the list."
        raise ParseError(
            f"'{token.text}' is not a command.{suggestion}",
            token=token.text,
            position=token.pos,
            suggestion=hint,
        ) from None


def _split_option(token: Token, spec: VerbSpec, rest: list[Token]) -> tuple[OptionSpec, str | None]:
    name, eq, inline = token.text[2:].partition("=")
    name = name.lower()
    known = {o.name: o for o in spec.options}
    if name not in known:
        everywhere = {o.name for s in VERBS.values() for o in s.options}
        if name in everywhere:
            valid = ", ".join(f"--{o}" for o in known) or "none"
            raise ParseError(
                f"--{name} does not apply to {spec.verb.value}; its options are: {valid}.",
                token=token.text,
                position=token.pos,
            )
        hint = closest(name, list(known) or list(everywhere))
        suggestion = f" Did you mean --{hint}?" if hint else ""
        raise ParseError(
            f"'--{name}' is not an option of {spec.verb.value}.{suggestion}",
            token=token.text,
            position=token.pos,
            suggestion=hint,
        )
    option = known[name]
    if not option.takes_value:
        if eq:
            raise ParseError(f"--{name} takes no value.", token=token.text, position=token.pos)
        return option, None
    if eq:
        value = inline
    elif rest and not (rest[0].text.startswith("--") and not rest[0].quoted):
        value = rest.pop(0).text
    else:
        raise ParseError(f"--{name} needs a value: --{name} {option.metavar}.", token=token.text, position=token.pos)
    if option.choices and value.lower() not in option.choices:
        raise ParseError(
            f"--{name} takes {' or '.join(option.choices)}, not '{value}'.", token=value, position=token.pos
        )
    return option, value


def parse(text: str) -> Command:
    if not isinstance(text, str):
        raise ParseError("A command must be text.")
    if len(text) > MAX_INPUT:
        raise ParseError(f"That command is {len(text)} characters long; the limit is {MAX_INPUT}.")
    if "\x00" in text:
        raise ParseError("Control characters are not allowed in a command.")
    tokens = tokenize(text.strip())
    if tokens and tokens[0].text.lower() in ("mde", "/mde", "@mde") and not tokens[0].quoted:
        tokens = tokens[1:]
    if not tokens:
        return HelpCommand()
    verb = _verb(tokens[0])
    spec = VERBS[verb]
    rest = tokens[1:]
    options: dict[str, str | None] = {}
    positional: list[Token] = []
    while rest:
        token = rest.pop(0)
        if token.text.startswith("--") and not token.quoted:
            option, value = _split_option(token, spec, rest)
            options[option.name] = value
        else:
            positional.append(token)
    return _build(spec, positional, options)


def _build(spec: VerbSpec, positional: list[Token], options: dict[str, str | None]) -> Command:
    verb = spec.verb
    reason = options.get("reason")
    if reason is not None and not reason.strip():
        raise ParseError('--reason is empty; say why, e.g. --reason "INC-1042 ransomware".')
    if verb is Verb.HELP:
        return HelpCommand(topic=positional[0].text.lower() if positional else None)
    if verb is Verb.DOCTOR:
        if positional:
            extra = positional[0]
            raise ParseError("doctor takes nothing more; type doctor.", token=extra.text, position=extra.pos)
        return DoctorCommand()
    if verb is Verb.SCHEDULE:
        return build_schedule(positional, options)
    if verb in (Verb.BLOCK, Verb.UNBLOCK, Verb.INDICATORS):
        return build_indicator(verb, [clean(t.text, t) for t in positional], options)
    if verb in (Verb.ISOLATED, Verb.ADOPT):
        return build_containment(verb, [t for tok in positional for t in parse_targets(tok)], options)
    if verb is Verb.STATUS:
        return StatusCommand(request_id=_request_id(positional[0], verb) if positional else None)
    if spec.takes_request_id:
        request_id = _request_id(positional[0] if positional else None, verb)
        if len(positional) > 1:
            extra = positional[1]
            raise ParseError(
                f"Unexpected '{extra.text}' after the request number.", token=extra.text, position=extra.pos
            )
        if verb is Verb.CANCEL:
            return CancelCommand(request_id=request_id, reason=reason)
        if verb is Verb.REJECT and reason is None:
            raise ParseError('reject needs --reason "…" so the requester knows why.')
        return DecisionCommand(approve=verb is Verb.APPROVE, request_id=request_id, reason=reason)
    if verb is Verb.HISTORY:
        limit = _int_option("limit", options["limit"] or "", 1, 100) if "limit" in options else 10
        devices = [t for tok in positional for t in parse_targets(tok)]
        if any(t.kind is not TargetKind.DEVICE for t in devices) or len(devices) > 1:
            raise ParseError("history takes at most one device:NAME.")
        return HistoryCommand(limit=limit, device=devices[0].value if devices else None)
    tag_value = None
    if spec.takes_tag_value:
        if not positional:
            raise ParseError(
                f'{verb.value} needs the tag first, e.g. {verb.value} "INC-1042" tag:"Finance Laptops" --reason "…".'
            )
        first = positional.pop(0)
        tag_value = clean(first.text, first)
        if not tag_value or len(tag_value) > MAX_TAG:
            raise ParseError(f"A tag must be 1 to {MAX_TAG} characters.", token=first.text[:40], position=first.pos)
        if (
            ":" in tag_value
            and not first.quoted
            and tag_value.split(":", 1)[0].lower() in {k.value for k in TargetKind}
        ):
            raise ParseError(
                f'{verb.value} needs the tag value before the targets, e.g. {verb.value} "INC-1042" '
                f'{first.text} --reason "…".',
                token=first.text,
                position=first.pos,
            )
    sha1, path = None, None
    if spec.subject is not None:
        if not positional:
            raise ParseError(f"{verb.value} needs the file first; e.g. {spec.examples[0]}")
        first = positional.pop(0)
        if spec.subject == "sha1":
            sha1 = files.sha1(clean(first.text, first))
        else:
            path = files.path(first.text)
        if positional and positional[0].text.lower() == "on" and not positional[0].quoted:
            positional.pop(0)
    targets: list[Target] = []
    for token in positional:
        for target in parse_targets(token):
            if target not in targets:
                targets.append(target)
    if not targets and sha1 is not None:
        targets.append(Target(TargetKind.FILE, sha1))  # quarantine: wherever MDE saw the file
    if verb is Verb.COLLECT_FILE and (len(targets) != 1 or targets[0].kind is not TargetKind.DEVICE):
        raise ParseError(
            "collect-file takes exactly one device:NAME: MDE runs one live response session per device at a time."
        )
    if not targets:
        raise ParseError(
            f'{verb.value} needs a target, e.g. {verb.value} tag:"Domain Controllers"'
            + (' --reason "…"' if spec.needs_reason else "")
            + "."
        )
    if verb is Verb.DEVICES:
        return DevicesCommand(targets=tuple(targets))
    if spec.needs_reason and reason is None:
        raise ParseError(f'{verb.value} needs --reason "…": MDE records it as the action\'s comment.')
    canary = _int_option("canary", options["canary"] or "", 1, MAX_CANARY) if "canary" in options else None
    release_after, release_at = time_box(options)
    return ActionCommand(
        verb=verb,
        targets=tuple(targets),
        reason=reason.strip() if reason else None,
        isolation_type=ISOLATION_TYPES[(options.get("type") or "full").lower()],
        scan_type=(options.get("scan") or "quick").capitalize(),
        tag_value=tag_value,
        sha1=sha1,
        path=path,
        dry_run="dry-run" in options,
        active_only="active-only" in options,
        canary=canary,
        release_after=release_after,
        release_at=release_at,
    )
