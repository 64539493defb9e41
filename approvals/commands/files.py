"""The file a ``quarantine`` or ``collect-file`` command names, validated strictly (one sentence per mistake)."""

from __future__ import annotations

import re

from approvals.commands.models import ParseError

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_WINDOWS = re.compile(r"^[A-Za-z]:\\[^*?\"<>|]*$")
MAX_PATH = 1024


def sha1(text: str) -> str:
    """``sha1:HEX`` (or ``hash:HEX`` of 40 digits): StopAndQuarantineFile takes a SHA-1 only
    (stop-and-quarantine-file.md), so a SHA-256 or MD5 gets a sentence that says so."""
    kind, sep, value = text.partition(":")
    value = value.strip()
    if not sep or kind.lower() not in ("sha1", "hash", "file"):
        raise ParseError(
            f"quarantine takes the file's SHA-1 first, e.g. quarantine sha1:<40 hex digits>, not '{text[:60]}'."
        )
    if not _HEX.match(value):
        raise ParseError(f"'{value[:80]}' is not a hash: use hexadecimal digits only.")
    if len(value) in (64, 32):
        raise ParseError(
            f"MDE stops and quarantines files by SHA-1 only; '{value[:16]}…' is a "
            f"{'SHA-256' if len(value) == 64 else 'MD5'}. Find the SHA-1 on the file's page in the portal."
        )
    if len(value) != 40:
        raise ParseError(f"A SHA-1 has 40 hex digits; '{value[:80]}' has {len(value)}.")
    return value.lower()


def path(text: str) -> str:
    """An absolute file path on the device: ``C:\\dir\\file`` (Windows) or ``/dir/file`` (macOS, Linux)."""
    value = text.strip()
    if not value:
        raise ParseError(
            'collect-file needs the file\'s full path first, e.g. collect-file "C:\\Temp\\a.exe" on device:NAME.'
        )
    if len(value) > MAX_PATH:
        raise ParseError(f"That path is {len(value)} characters long; the limit is {MAX_PATH}.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ParseError("Control characters are not allowed in a path.")
    if "*" in value or "?" in value:
        raise ParseError("collect-file takes one file; wildcards are not allowed.")
    windows = bool(_WINDOWS.match(value))
    unix = value.startswith("/") and "\\" not in value
    if not (windows or unix) or value.endswith(("\\", "/")):
        raise ParseError(
            f"'{value[:80]}' is not a full path to a file; use C:\\dir\\file.ext or /dir/file "
            "(quote it if it has spaces)."
        )
    segments = re.split(r"[\\/]", value)
    if ".." in segments:
        raise ParseError("Use the file's full path without '..'.")
    return value
