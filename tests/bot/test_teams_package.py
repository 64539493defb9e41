"""The Teams app package: filled, validated, zipped; mistakes are named."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from bot.teams.package import PackageError, build_package
from tests.bot.test_cli import run

APP = "11111111-2222-3333-4444-555555555555"


def test_the_package_has_the_manifest_and_both_icons(tmp_path: Path) -> None:
    out = build_package(tmp_path / "app.zip", app_id=APP, bot_id=APP, name="mde", valid_domains=["bot.contoso.com"])
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["id"] == APP and manifest["bots"][0]["botId"] == APP
    assert manifest["validDomains"] == ["bot.contoso.com"]
    titles = [c["title"] for c in manifest["bots"][0]["commandLists"][0]["commands"]]
    assert "isolate" in titles and "help" in titles


def test_an_app_id_that_is_not_a_guid_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a GUID"):
        build_package(tmp_path / "app.zip", app_id="my-bot", bot_id="my-bot", name="mde", valid_domains=[])


def test_the_cli_builds_it_and_explains_mistakes(tmp_path: Path) -> None:
    ok = run("manifest", "teams", "--app-id", APP, "--out", str(tmp_path / "app.zip"))
    assert ok.returncode == 0 and (tmp_path / "app.zip").exists()
    bad = run("manifest", "teams", "--app-id", "nope", "--out", str(tmp_path / "bad.zip"))
    assert bad.returncode == 2 and "not a GUID" in bad.stderr and "Traceback" not in bad.stderr
