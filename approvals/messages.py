"""One human sentence for each MDE error type (errors are types; wording lives here, once)."""

from __future__ import annotations

from mde.errors import (
    ActionAlreadyPending,
    AuthenticationFailed,
    BadRequest,
    HuntingApiRetired,
    MdeError,
    MdeServerError,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnsupportedDevice,
    UntrustedNextLink,
)


def describe_mde_error(exc: MdeError) -> str:
    if isinstance(exc, HuntingApiRetired | UntrustedNextLink):
        return exc.message  # already a complete, specific sentence
    if isinstance(exc, PermissionDenied):
        role = f" It needs the {exc.missing_role} application permission" if exc.missing_role else ""
        return f"MDE refused the call: the bot's app registration lacks a permission.{role}; run `mde-chatops doctor`."
    if isinstance(exc, AuthenticationFailed):
        return "MDE did not accept the bot's token; check the app registration's credentials (`mde-chatops doctor`)."
    if isinstance(exc, RateLimited):
        wait = f" for about {exc.retry_after:.0f} s" if exc.retry_after else ""
        return f"MDE's rate limit is exhausted{wait}; try again shortly."
    if isinstance(exc, ActionAlreadyPending):
        return "An action of this kind is already pending on that device."
    if isinstance(exc, UnsupportedDevice):
        return f"The device does not support this action ({exc.code or 'unsupported'})."
    if isinstance(exc, NotFound):
        return "MDE does not know that device or action."
    if isinstance(exc, BadRequest):
        return f"MDE rejected the request: {exc.message}"
    if isinstance(exc, MdeServerError):
        return "MDE is not answering properly right now (server errors or timeouts); try again in a minute."
    return f"MDE error: {exc}"
