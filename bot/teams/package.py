"""``mde-chatops manifest teams``: fill, validate and zip the Teams app package."""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "manifest" / "teams"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ICON_SIZES = {"color": 192, "outline": 32}


class PackageError(ValueError):
    """The package would be refused by Teams; the message says what to fix."""

    user_facing = True


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise PackageError(f"{path.name} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def validate(manifest: dict[str, Any], directory: Path) -> None:
    for key in ("id", "version", "name", "description", "icons", "bots", "developer"):
        if key not in manifest:
            raise PackageError(f"manifest.json lacks the required field '{key}'")
    if not GUID.match(manifest["id"]):
        raise PackageError(f"the app id '{manifest['id']}' is not a GUID (the bot's Entra app/client id)")
    for bot in manifest["bots"]:
        if not GUID.match(bot.get("botId", "")):
            raise PackageError(f"the bot id '{bot.get('botId')}' is not a GUID")
        commands = [c for lst in bot.get("commandLists", []) for c in lst.get("commands", [])]
        if not commands or len(commands) > 10:
            raise PackageError("each command list needs 1 to 10 commands")
    if len(manifest["name"]["short"]) > 30:
        raise PackageError("name.short must be at most 30 characters")
    for kind, size in ICON_SIZES.items():
        path = directory / manifest["icons"][kind]
        if not path.exists():
            raise PackageError(f"icon {path.name} is missing")
        if _png_size(path) != (size, size):
            raise PackageError(f"the {kind} icon must be {size}x{size} pixels")


def build_package(
    out: Path, *, app_id: str, bot_id: str, name: str, valid_domains: list[str], template_dir: Path = TEMPLATE_DIR
) -> Path:
    text = (template_dir / "manifest.json").read_text(encoding="utf-8")
    text = text.replace("{{APP_ID}}", app_id).replace("{{BOT_ID}}", bot_id).replace("{{NAME}}", name)
    manifest = json.loads(text)
    manifest["validDomains"] = valid_domains
    validate(manifest, template_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for kind in ICON_SIZES:
            archive.write(template_dir / manifest["icons"][kind], manifest["icons"][kind])
    return out
