"""Errors of ``approvals/`` that become one sentence in chat (house style 14).

Everything a person can fix by typing something else derives from ``UserError``: its ``message`` is shown
as is.
"""

from __future__ import annotations


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
