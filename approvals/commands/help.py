"""Help text generated from ``spec.py``: the same on every surface but for the command prefix."""

from __future__ import annotations

from approvals.commands.models import Verb
from approvals.commands.spec import ALIASES, TARGET_KINDS_HELP, VERBS
from approvals.commands.suggest import closest


def _p(prefix: str) -> str:
    return f"{prefix} " if prefix else ""


def help_text(topic: str | None = None, *, prefix: str = "/mde") -> str:
    if topic:
        word = topic.lower().lstrip("-")
        verb = ALIASES.get(word)
        if verb is None:
            try:
                verb = Verb(word)
            except ValueError:
                hint = closest(word, [v.value for v in Verb])
                return f"There is no command '{topic}'." + (f" Did you mean `help {hint}`?" if hint else "")
        spec = VERBS[verb]
        lines = [f"{_p(prefix)}{usage}" for usage in (spec.usage, *spec.more_usage)]
        lines.append(spec.summary[0].upper() + spec.summary[1:] + ".")
        if spec.needs_targets:
            lines.append(f"Targets: {TARGET_KINDS_HELP}")
        if spec.options:
            lines.append("Options:")
            lines.extend(f"  --{o.name}{' ' + o.metavar if o.takes_value else ''}  {o.help}" for o in spec.options)
        lines.extend(spec.notes)
        if spec.aliases:
            lines.append("Also: " + ", ".join(spec.aliases))
        lines.append("Examples:")
        lines.extend(f"  {_p(prefix)}{example}" for example in spec.examples)
        return "\n".join(lines)
    width = max(len(v.value) for v in VERBS)
    lines = ["Commands:"]
    lines.extend(f"  {_p(prefix)}{spec.verb.value.ljust(width)}  {spec.summary}" for spec in VERBS.values())
    lines.append(f"Targets: {TARGET_KINDS_HELP}")
    lines.append(f"More: {_p(prefix)}help COMMAND, e.g. {_p(prefix)}help isolate")
    return "\n".join(lines)
