"""The error the simulator's handlers raise; the middleware turns it into MDE's documented error body
(common-errors.md: ``{"error": {"code", "message", "target"}}``)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def required(body: Any, name: str) -> Any:
    """common-errors.md: ``MissingRequiredParameter``; body parameter names are case-sensitive."""
    if not isinstance(body, dict) or body.get(name) in (None, ""):
        raise ApiError(400, "MissingRequiredParameter", f"{name} is a required parameter (names are case-sensitive)")
    return body[name]
