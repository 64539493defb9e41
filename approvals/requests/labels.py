"""Human labels for verbs and their parameters, shared by every surface through RequestView."""

from __future__ import annotations

from typing import Any

_VERB_LABELS = {
    "isolate": "Isolate",
    "unisolate": "Release from isolation",
    "scan": "Antivirus scan",
    "restrict": "Restrict app execution",
    "unrestrict": "Remove app restriction",
    "collect": "Collect investigation package",
    "tag": "Add tag",
    "untag": "Remove tag",
}


def action_label(verb: str, params: dict[str, Any]) -> str:
    base = _VERB_LABELS.get(verb, verb)
    if verb == "isolate":
        return f"{base} ({params.get('isolation_type', 'Full')})"
    if verb == "scan":
        return f"{base} ({params.get('scan_type', 'Quick')})"
    if verb in ("tag", "untag"):
        return f"{base} '{params.get('tag_value', '')}'"
    if verb == "schedule":
        return _schedule_label(params)
    return base


def _schedule_label(params: dict[str, Any]) -> str:
    what = f"tag '{params.get('tag_value', '')}' {params.get('cadence_text', '')}".rstrip()
    if params.get("op") == "remove":
        return f"Remove schedule #{params.get('schedule_id', '?')} ({what})"
    number = f" #{params['schedule_id']}" if params.get("schedule_id") else ""
    return f"Schedule{number}: {what}" + (", with --sync" if params.get("sync") else "")
