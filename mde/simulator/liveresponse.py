"""Live response as the docs describe it (MicrosoftDocs/defender-docs, defender-endpoint/api/).

* run-live-response.md: POST /api/machines/{id}/runliveresponse, ``Machine.LiveResponse``; body ``Comment``
  and ``Commands`` (PutFile, RunScript, GetFile, in that order); 10 calls per minute (429 beyond); 25
  concurrently running sessions (429 beyond); one session per device (400 ActiveRequestAlreadyExists);
  an offline device's session is queued for up to three days; 201 with a ``LiveResponse`` machine action
  whose ``commands[]`` carry ``commandStatus`` Created | Completed | Failed; a failed command stops the rest.
* get-live-response-result.md: GET /api/machineactions/{id}/GetLiveResponseResultDownloadLink(index=N),
  ``Machine.Read.All`` or ``Machine.ReadWrite.All``; 200 ``{"value": "<link>"}``; the link is valid for 30
  minutes and a new call makes a new one. What it answers before the command completed is not documented
  (UNCONFIRMED): the simulator answers 400.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from mde.simulator.errors import ApiError, required

COMMAND_ORDER = ("PutFile", "RunScript", "GetFile")
MAX_SESSIONS = 25
LINK_VALID_S = 30 * 60
LINK_FN = re.compile(r"^GetLiveResponseResultDownloadLink\(index=(\d+)\)$")


def validate_commands(body: Any) -> list[dict[str, Any]]:
    required(body, "Comment")
    commands = required(body, "Commands")
    if not isinstance(commands, list) or not commands:
        raise ApiError(400, "InvalidInput", "Commands must be a non-empty array")
    last = 0
    for command in commands:
        kind = command.get("type") if isinstance(command, dict) else None
        if kind not in COMMAND_ORDER:
            raise ApiError(400, "InvalidInput", f"Command type must be one of {', '.join(COMMAND_ORDER)}")
        if COMMAND_ORDER.index(kind) < last:
            raise ApiError(400, "InvalidInput", "Commands must be in the order PutFile, RunScript, GetFile")
        last = COMMAND_ORDER.index(kind)
        params = {p.get("key"): p.get("value") for p in command.get("params") or [] if isinstance(p, dict)}
        if kind == "GetFile" and not params.get("Path"):
            raise ApiError(400, "MissingRequiredParameter", "GetFile needs the Path parameter")
    return list(commands)


def get_file_paths(commands: list[dict[str, Any]]) -> list[str]:
    return [
        str(p.get("value"))
        for c in commands
        if c.get("type") == "GetFile"
        for p in c.get("params") or []
        if p.get("key") == "Path"
    ]


@dataclass
class Blob:
    action_id: str
    index: int
    path: str
    expires_mono: float


class BlobStore:
    """The download links get-live-response-result.md hands out, each valid for 30 (scaled) minutes."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self.blobs: dict[str, Blob] = {}

    def link(self, base_url: str, action_id: str, index: int, path: str) -> str:
        token = secrets.token_urlsafe(16)
        self.blobs[token] = Blob(action_id, index, path, time.monotonic() + LINK_VALID_S / self.time_scale)
        return f"{base_url}/_sim/blobs/{token}?sp=r&sig={secrets.token_hex(8)}"

    def open(self, token: str) -> Blob | None:
        blob = self.blobs.get(token)
        if blob is None or time.monotonic() > blob.expires_mono:
            return None
        return blob
