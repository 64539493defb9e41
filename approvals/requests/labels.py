"""Human labels for requests, shared by every surface through RequestView."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from approvals.verbs import ACTIONS, ScheduleOp, Verb


def action_label(verb: Verb, params: Mapping[str, Any]) -> str:
    """What every surface shows: "Isolate (Full)", "Add tag 'Compromised'", "Schedule #3: tag 'DC' every …"."""
    if verb in ACTIONS:
        timed = planned_release_label(params) if verb == Verb.ISOLATE else ""
        return ACTIONS[verb].describe(params) + timed
    if verb == Verb.SCHEDULE:
        return _schedule_label(params)
    return verb.value


def _schedule_label(params: Mapping[str, Any]) -> str:
    what = f"tag '{params.get('tag_value', '')}' {params.get('cadence_text', '')}".rstrip()
    if params.get("op") == ScheduleOp.REMOVE:
        return f"Remove schedule #{params.get('schedule_id', '?')} ({what})"
    number = f" #{params['schedule_id']}" if params.get("schedule_id") else ""
    return f"Schedule{number}: {what}" + (", with --sync" if params.get("sync") else "")


def planned_release_label(params: Mapping[str, Any]) -> str:
    """A time-boxed isolation's planned release, as the card and status lines show it."""
    planned = params.get("planned_release")
    if not isinstance(planned, dict):
        return ""
    auto = ", pre-approved" if params.get("release_preapproved") else ""
    if planned.get("at"):
        return f" · release proposed at {str(planned['at'])[:16].replace('T', ' ')} UTC{auto}"
    return f" · release proposed {planned.get('after', '?')} after isolation{auto}"
