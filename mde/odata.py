"""Build OData ``$filter`` expressions safely: every value goes through ``quote``."""

from __future__ import annotations

from collections.abc import Iterable


class UnsafeValue(ValueError):
    """A value that cannot be put in a filter at all (control characters)."""


def has_control_characters(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def quote(value: str) -> str:
    """A single-quoted OData string literal; embedded quotes are doubled, control characters refused."""
    if has_control_characters(value):
        raise UnsafeValue("control characters cannot appear in a filter value")
    return "'" + value.replace("'", "''") + "'"


def tag_eq(tag: str) -> str:
    return f"machineTags/any(tag: tag eq {quote(tag)})"


def group_id_eq(group_id: int) -> str:
    return f"rbacGroupId eq {int(group_id)}"


def name_eq(name: str) -> str:
    return f"computerDnsName eq {quote(name)}"


def name_startswith(prefix: str) -> str:
    return f"startswith(computerDnsName,{quote(prefix)})"


def health_eq(status: str) -> str:
    return f"healthStatus eq {quote(status)}"


def os_eq(os_platform: str) -> str:
    return f"osPlatform eq {quote(os_platform)}"


def field_eq(field: str, value: str) -> str:
    if not field.isidentifier():
        raise UnsafeValue(f"{field!r} is not a property name")
    return f"{field} eq {quote(value)}"


def and_(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


def or_(parts: Iterable[str]) -> str:
    return " or ".join(f"({p})" for p in parts if p)
