"""Words and targets: the lexical layer both the main grammar and the ``schedule`` sub-commands build on."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from approvals.commands import files
from approvals.commands.models import ParseError, Target, TargetKind
from approvals.commands.spec import MAX_TAG
from approvals.commands.suggest import closest

QUOTES = {'"': '"', "'": "'", "“": "”", "”": "”", "‘": "’", "’": "’", "«": "»"}
SINGLE_STYLE = {"'", "‘", "’"}
LIST_KINDS = {TargetKind.DEVICE, TargetKind.IP, TargetKind.INCIDENT, TargetKind.USER}
#: an account name or a UPN: MDE's users API takes the account name (the part before @)
USER_NAME = re.compile(r"^[A-Za-z0-9._'-]{1,104}(@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})?$")


@dataclass(frozen=True)
class Token:
    text: str
    pos: int
    quoted: bool


def tokenize(text: str) -> list[Token]:
    """Shell-like words: quotes group (straight or smart), ``\\"`` escapes inside quotes.

    A single quote opens a quoted part only at the start of a word or after ``:``/``=``, so names such
    as ``O'Brien's`` need no quoting.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, quoted = i, False
        buf: list[str] = []
        while i < n and not text[i].isspace():
            ch = text[i]
            opens = ch in QUOTES and (ch not in SINGLE_STYLE or not buf or buf[-1] in ":=")
            if opens:
                close, j, quoted = QUOTES[ch], i + 1, True
                closers = (
                    {close, '"'} if ch in ("“", "”") else {close, "'", "‘", "’"} if ch in SINGLE_STYLE else {close}
                )
                while True:
                    if j >= n:
                        raise ParseError(
                            f"The quote opened at position {i + 1} is never closed; add a closing {close}.",
                            position=i,
                        )
                    if text[j] == "\\" and j + 1 < n and text[j + 1] in (*QUOTES, "\\"):
                        buf.append(text[j + 1])
                        j += 2
                        continue
                    if text[j] in closers:
                        break
                    buf.append(text[j])
                    j += 1
                i = j + 1
                continue
            buf.append(ch)
            i += 1
        tokens.append(Token("".join(buf), start, quoted))
    return tokens


def parse_targets(token: Token) -> list[Target]:
    text = token.text
    kind_text, sep, value = text.partition(":")
    if not sep or not kind_text.replace("-", "").isalpha():
        return [Target(TargetKind.DEVICE, clean(text, token))]
    try:
        kind = TargetKind(kind_text.lower())
    except ValueError:
        kinds = [k.value for k in TargetKind]
        hint = closest(kind_text, kinds, cutoff=0.5)
        suggestion = f" Did you mean {hint}:{value}?" if hint else f" Use one of: {', '.join(k + ':' for k in kinds)}."
        raise ParseError(
            f"'{kind_text}:' is not a target kind.{suggestion}",
            token=text,
            position=token.pos,
            suggestion=hint,
        ) from None
    values = [v for v in value.split(",")] if kind in LIST_KINDS and not token.quoted else [value]
    out = []
    for raw in values:
        item = clean(raw, token)
        if not item:
            raise ParseError(
                f"'{text}' has no value after '{kind.value}:'; e.g. {kind.value}:\"…\".",
                token=text,
                position=token.pos,
            )
        if kind is TargetKind.IP:
            try:
                item = str(ipaddress.ip_address(item))
            except ValueError:
                raise ParseError(f"'{item}' is not an IP address.", token=text, position=token.pos) from None
        if kind is TargetKind.FILE:
            item = files.sha1(f"sha1:{item}")
        if kind is TargetKind.USER and not USER_NAME.match(item):
            raise ParseError(
                f"'{item}' is not a user; use user:alice@contoso.com or user:alice.", token=text, position=token.pos
            )
        if kind is TargetKind.TAG and len(item) > MAX_TAG:
            raise ParseError(f"Tags are at most {MAX_TAG} characters.", token=text[:40], position=token.pos)
        out.append(Target(kind, item))
    return out


def clean(value: str, token: Token) -> str:
    value = value.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ParseError("Control characters are not allowed in a command.", position=token.pos)
    return value
