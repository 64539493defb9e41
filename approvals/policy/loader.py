"""Load the policy YAML; errors name the file, the path of the bad key and what is expected."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from approvals.errors import PolicyError
from approvals.policy.models import PolicyModel
from approvals.policy.service import Policy


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_policy(path: str | Path | None) -> Policy:
    if path is None:
        return Policy.default()
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PolicyError(f"policy file {file} does not exist (POLICY_FILE)") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{file}: the top level must be a mapping (defaults:, actions:, protection:, channels:)")
    try:
        return Policy(PolicyModel.model_validate(data), name=str(file))
    except ValidationError as exc:
        lines = [f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise PolicyError(f"{file} is not a valid policy:\n  " + "\n  ".join(lines)) from None
