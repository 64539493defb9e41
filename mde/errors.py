"""Typed MDE errors.

The chat layer maps each type to one human sentence; nothing above ``mde/`` needs to read HTTP
status codes or the free-text ``message`` of an error body.
"""

from __future__ import annotations


class MdeError(Exception):
    """Base class for every error the MDE client raises."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        #: MDE's per-request correlation id (``error.target``), to quote to Microsoft support.
        self.target = target

    def __str__(self) -> str:
        bits = [self.message]
        if self.code:
            bits.append(f"[{self.code}]")
        return " ".join(bits)


class AuthenticationFailed(MdeError):
    """401: the token is missing, expired or for the wrong audience."""


class PermissionDenied(MdeError):
    """403: a valid token without the application role this call needs."""

    def __init__(self, message: str, *, missing_role: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        #: The documented permission the call needs, e.g. ``Machine.Isolate``.
        self.missing_role = missing_role


class NotFound(MdeError):
    """404: no such machine or machine action."""


class BadRequest(MdeError):
    """400 that will not heal by retrying (invalid input, OData error, batch too large)."""


class ActionAlreadyPending(BadRequest):
    """400 "Action is already in progress": the same action is already pending on the device."""


class UnsupportedDevice(BadRequest):
    """400 ``OsPlatformNotSupported`` / ``ClientVersionNotSupported``: the device cannot run the action."""


class HuntingApiRetired(MdeError):
    """MDE's own advanced hunting endpoint no longer answers: Microsoft retired it for Microsoft Graph."""


class UntrustedNextLink(MdeError):
    """MDE answered with an ``@odata.nextLink`` to a host that is not a documented MDE host of the cloud.

    The listing stops there; the token is not sent to that host.
    """


class SubmissionWithdrawn(MdeError):
    """Not an MDE answer: the caller's gate said no after the rate limiter granted the call, so it was never
    sent (a request cancelled while its submissions waited for budget)."""


class RateLimited(MdeError):
    """429 that survived the client's own retries; ``retry_after`` is MDE's advice in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class MdeServerError(MdeError):
    """5xx or a transport failure (timeout, connection reset) that outlived the bounded retries."""

    retryable = True

    def __init__(self, message: str, *, outcome_unknown: bool = False, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        #: an action POST whose answer was lost: it may have been executed; look before submitting again
        self.outcome_unknown = outcome_unknown
