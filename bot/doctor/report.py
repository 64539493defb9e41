"""What every check shares: the ``Check`` line, the report's text, and the rules a check runs under.

One place says how a verdict reads (``ok``, ``WARN: …``, ``FAIL: …``) and how a check's exception or timeout
becomes its own line, so the check modules only decide verdicts and never format or raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from mde.auth import TokenProvider

DEFAULT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report. ``warning``: the check passes (exit 0) but something optional is missing and the
    operator should know what the bot does without it."""

    name: str
    ok: bool
    detail: str = ""
    warning: bool = False

    def line(self) -> str:
        if not self.ok:
            return f"{self.name}: FAIL: {self.detail}"
        if self.warning:
            return f"{self.name}: WARN: {self.detail}"
        return f"{self.name}: ok" + (f" ({self.detail})" if self.detail else "")


def render(checks: Sequence[Check]) -> str:
    failed = sum(not c.ok for c in checks)
    warned = sum(c.ok and c.warning for c in checks)
    summary = f"all {len(checks)} checks passed" if not failed else f"{failed} of {len(checks)} checks failed"
    if warned:
        summary += f", {warned} with a warning"
    return "\n".join([*(c.line() for c in checks), summary])


def one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def reason(exc: BaseException) -> str:
    """The most specific message of an exception (SQLAlchemy wraps the driver's), on one line."""
    inner = getattr(exc, "orig", None) or exc
    message = one_line(inner)
    return f"{type(inner).__name__}: {message}" if message else type(inner).__name__


@dataclass(frozen=True, slots=True)
class Context:
    """The settings under check and the time any one network call may take."""

    settings: Settings
    timeout_s: float = DEFAULT_TIMEOUT_S

    async def within(self, awaitable: Awaitable[Any], what: str) -> Any:
        """A hung endpoint becomes a sentence naming it, not a doctor that never answers."""
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s)
        except TimeoutError:
            raise TimeoutError(f"{what} did not answer within {self.timeout_s:g} s") from None


async def guard(name: str, check: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    """Whatever goes wrong inside a check becomes its FAIL line, never a traceback."""
    try:
        return await check()
    except Exception as exc:
        if getattr(exc, "user_facing", False):  # already one sentence naming the setting
            return [Check(name, False, str(exc))]
        return [Check(name, False, f"unexpected {reason(exc)}")]


async def guard_one(name: str, check: Callable[[], Awaitable[Check]]) -> Check:
    try:
        return await check()
    except Exception as exc:
        return Check(name, False, f"unexpected {reason(exc)}")


class Borrowed:
    """A token provider the doctor uses but does not own: closing it is the owner's business."""

    def __init__(self, inner: TokenProvider) -> None:
        self._inner = inner

    async def get_token(self) -> str:
        return await self._inner.get_token()

    def invalidate(self) -> None:
        self._inner.invalidate()

    async def close(self) -> None:
        return None
