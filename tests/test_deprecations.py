"""pytest's warning filters (pyproject.toml): a deprecation attributed to our own code fails the test that
meets it; one attributed to a dependency is only reported."""

from __future__ import annotations

import warnings

import pytest


@pytest.mark.parametrize("module", ["bot.teams.cards", "approvals.service", "mde", "tests.support.stack"])
def test_a_deprecation_in_our_code_is_an_error(module: str) -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old call", DeprecationWarning, "x.py", 1, module=module)


@pytest.mark.parametrize("module", ["aiohttp.web_app", "sqlalchemy.orm", "botocore", "mdex"])
def test_a_deprecation_in_a_dependency_is_reported_not_raised(module: str) -> None:
    with warnings.catch_warnings(record=True) as seen:  # the configured filters stay; only the report is caught
        warnings.warn_explicit("old call", DeprecationWarning, "x.py", 1, module=module)
    assert [str(w.message) for w in seen] == ["old call"]
