"""What the simulated MDE refuses for a device's platform: the rows ``mde.capabilities`` marks UNSUPPORTED.

The codes come from common-errors.md: ``OsPlatformNotSupported`` ("OS Platform {…} isn't supported for this
action") and ``ClientVersionNotSupported`` ("{action} is supported on client version {…} and above"), both
400. Which of the two MDE sends for each refusal is not documented per action (UNCONFIRMED): the simulator
sends the table row's code. UNCLEAR rows (the pages disagree, e.g. Selective on Windows 10 1703) are
accepted here: refusing them would claim something no page says; resolution leaves them out instead.
"""

from __future__ import annotations

from typing import Any

from mde.capabilities import MAC_CLIENT_FLOOR, Device, Platform, Support, check, covers, platform_of


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def refusal(machine: dict[str, Any], action_type: str, scope: str | None) -> tuple[str, str] | None:
    """(error code, message) when MDE refuses ``action_type`` on ``machine``, else None."""
    onboarded = str(machine.get("onboardingStatus") or "").lower() == "onboarded"
    build = machine.get("osBuild")
    device = Device(
        machine.get("osPlatform"), machine.get("version"), int(build) if isinstance(build, int) else None, onboarded
    )
    if not covers(action_type):  # e.g. Offboard: only what every action needs
        if not onboarded or platform_of(device) is Platform.MOBILE:
            return "OsPlatformNotSupported", f"OS Platform {machine.get('osPlatform')} isn't supported for this action"
        return None
    verdict = check(action_type, device, scope)
    if verdict.support is Support.UNSUPPORTED:
        return "OsPlatformNotSupported", f"OS Platform {machine.get('osPlatform')} isn't supported for this action"
    rule = verdict.rule
    client = machine.get("clientVersion")  # simulator-only: the machine entity does not carry it
    needs_client = rule is not None and rule.error_code == "ClientVersionNotSupported"
    if needs_client and client and _version(str(client)) < _version(MAC_CLIENT_FLOOR):
        return "ClientVersionNotSupported", f"{action_type} is supported on client version {MAC_CLIENT_FLOOR} and above"
    return None
