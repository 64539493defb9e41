"""The "did you mean" catalog: suggestions, and its cost (none on the happy path, one listing for many misses)."""

from __future__ import annotations

import pytest

from approvals.commands.models import Target, TargetKind
from approvals.errors import ResolutionError
from approvals.resolution.catalog import CatalogCache, did_you_mean
from approvals.resolution.flows import Resolver
from approvals.verbs import Verb
from mde.client import MdeClient
from mde.simulator import Simulator
from tests.support.resolution import POLICY, SWEEP


def _full_listings(sim: Simulator) -> int:
    """Unfiltered pages of ``GET /api/machines`` (not the one-row probe for an empty tenant)."""
    return sum(
        1
        for e in sim.request_log
        if e.path == "/api/machines" and "$filter" not in e.query and e.query.get("$top") != "1"
    )


def test_the_closest_spelling_is_found_whatever_the_case_and_given_as_known() -> None:
    assert did_you_mean("finance laptop", {"Finance Laptops", "VIP"}) == "Finance Laptops"
    assert did_you_mean("Domain Controlers", {"Domain Controllers"}) == "Domain Controllers"
    assert did_you_mean("something else", {"Finance Laptops", "VIP"}) is None


async def test_a_target_that_matches_never_lists_the_tenant(client: MdeClient, sim: Simulator) -> None:
    resolution = await Resolver(client, POLICY).resolve([Target(TargetKind.TAG, SWEEP)], verb=Verb.DEVICES)
    assert resolution.devices
    assert _full_listings(sim) == 0


async def test_misses_list_the_tenant_once_and_share_the_catalog(client: MdeClient, sim: Simulator) -> None:
    resolver = Resolver(client, POLICY, catalog=CatalogCache(client))
    for typo in ("Swep", "Sweeep", "sweep laptops"):
        with pytest.raises(ResolutionError):
            await resolver.resolve([Target(TargetKind.TAG, typo)], verb=Verb.DEVICES)
    assert _full_listings(sim) == 1


async def test_the_catalog_knows_every_tag_group_and_name_of_the_tenant(client: MdeClient, sim: Simulator) -> None:
    catalog = await CatalogCache(client).get()
    machines = sim.tenant.machines.values()
    assert catalog.tags == {t for m in machines for t in m["machineTags"]}
    assert catalog.groups == {m["rbacGroupName"] for m in machines}
    assert catalog.names == {m["computerDnsName"] for m in machines}
