"""The Teams app package: filled, validated, zipped; mistakes are named."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jsonschema
import pytest

from bot.teams.package import PackageError, build_package
from tests.support.cli import run

APP = "11111111-2222-3333-4444-555555555555"
#: Microsoft's Teams manifest schemas, one folder per manifestVersion (npm @microsoft/app-manifest, installed
#: in tools/cards by scripts/ensure-card-tools)
NPM = Path(__file__).resolve().parents[2] / "tools" / "cards" / "node_modules"
SCHEMAS = NPM / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"


def schema_errors(manifest: dict[str, object]) -> list[str]:
    path = SCHEMAS / f"v{manifest['manifestVersion']}" / "MicrosoftTeams.schema.json"
    assert path.exists(), f"{path} is missing: run scripts/ensure-card-tools"
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def _built(tmp_path: Path) -> dict[str, object]:
    out = build_package(tmp_path / "app.zip", app_id=APP, bot_id=APP, name="mde", valid_domains=["bot.contoso.com"])
    with zipfile.ZipFile(out) as archive:
        manifest: dict[str, object] = json.loads(archive.read("manifest.json"))
    return manifest


def test_the_package_manifest_is_valid_against_microsofts_schema_for_its_version(tmp_path: Path) -> None:
    manifest = _built(tmp_path)
    assert str(manifest["$schema"]).endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")
    assert schema_errors(manifest) == []


def test_the_schema_check_names_what_teams_would_refuse(tmp_path: Path) -> None:
    manifest = _built(tmp_path)
    manifest["accentColor"] = "navy"
    manifest["bots"][0]["scopes"] = ["everywhere"]  # type: ignore[index]
    manifest["supportURL"] = "https://example.com"
    errors = schema_errors(manifest)
    assert any(e.startswith("accentColor") for e in errors) and any(e.startswith("bots/0/scopes/0") for e in errors)
    assert any("supportURL" in e for e in errors)


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
