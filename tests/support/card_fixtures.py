"""Every Adaptive Card the Teams surface can send, built from request and incident views in each state.

tests/bot/teams/test_card_content.py checks their content, tests/bot/teams/test_rendered_cards.py runs them
through Microsoft's renderer, and scripts/card-pictures renders them for docs/cards.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from approvals.verbs import Verb
from approvals.views import DecisionRow, DeviceCounts, DeviceRow, ExclusionRow, IncidentView, ProgressView, RequestView
from bot.slack.blocks import incident_blocks, reason_modal, request_blocks
from bot.teams import cards
from tests.support.views import counted

NOW = datetime(2026, 12, 2, 9, 13, tzinfo=UTC)
HYPER_V = "Hyper-V host: isolating it cuts off every guest VM"
#: what build_view says of the protected device while the request is pending, and after
PROTECTED = "protected: tagged 'Restricted security operations'; only a break-glass approval with a reason includes it"
PROTECTED_LEFT_OUT = "protected: tagged 'Restricted security operations'; not included"
#: the requester's Teams user id, as a message activity's ``from.id`` carries it
ALICE_TEAMS_ID = "29:1alice"


@dataclass(frozen=True)
class Fixture:
    name: str
    card: cards.Card
    #: the title of a ShowCard button to open before checking (the reason inputs live inside those)
    open_button: str | None = None
    #: what a person sees this card as, for docs/cards.md
    caption: str = ""

    def card_label(self) -> str:
        """The label of the reason input behind ``open_button``."""
        action = next(
            a
            for a in [*self.card.get("actions", [])]
            if a.get("title") == self.open_button and a.get("type") == "Action.ShowCard"
        )
        return str(action["card"]["body"][0]["label"])


def _devices(count: int, *, state: str | None = None, fail_every: int = 0, error: str = "") -> tuple[DeviceRow, ...]:
    rows = [
        DeviceRow(
            machine_id="0" * 40,
            name="hv-host-01.contoso.local",
            os_platform="WindowsServer2019",
            health_status="Active",
            warning=HYPER_V,
            state=state,
        )
    ]
    for i in range(count - 1):
        failed = fail_every and i % fail_every == 0
        rows.append(
            DeviceRow(
                machine_id=f"{i + 1:040x}",
                name=f"ws-{24 + i * 7:04d}.contoso.local",
                os_platform="Windows11" if i % 3 else "Windows10",
                health_status="Active",
                state="Failed" if failed else state,
                error=error if failed else None,
            )
        )
    return tuple(rows)


def request_view(state: str = "pending", **changes: object) -> RequestView:
    """The evidence's request: 31 devices behind a tag, a Hyper-V host, four exclusions and one protected."""
    view = RequestView(
        id=1,
        action=Verb.ISOLATE,
        action_label="Isolate (Selective)",
        state=state,
        requester_label="alice",
        requester_key="teams:aad-alice",
        reason="INC-1042: ransomware <beacon> on finance_laptops *urgent*",
        target_text='tag:"Finance Laptops" device:soc-jump-01 device:hv-host-01',
        devices=_devices(31),
        exclusions=(
            ExclusionRow(
                name="ws-0049.contoso.local",
                kind="inactive",
                reason="inactive (last full report 2026-11-13): MDE would hold the action for up to 3 days",
            ),
            ExclusionRow(
                name="ws-0059.contoso.local", kind="unsupported", reason="iOS devices do not support this action"
            ),
            ExclusionRow(
                name="soc-jump-01.contoso.local",
                kind="protected",
                reason=PROTECTED if state == "pending" else PROTECTED_LEFT_OUT,
            ),
        ),
        required_approvals=1,
        decisions=(),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        counts=DeviceCounts(total=0),
        warnings=(HYPER_V,),
    )
    return counted(dataclasses.replace(view, **changes))  # type: ignore[arg-type]


def _approved(state: str, progress: ProgressView, devices: tuple[DeviceRow, ...]) -> RequestView:
    bob = DecisionRow(actor_label="bob", approve=True, at=NOW)
    not_protected = dataclasses.replace(
        request_view().exclusions[2], reason=PROTECTED_LEFT_OUT + " (approved without break glass)"
    )
    return request_view(
        state,
        decisions=(bob,),
        progress=progress,
        devices=devices,
        exclusions=(*request_view().exclusions[:2], not_protected),
    )


def _summary_5000() -> RequestView:
    devices = tuple(
        DeviceRow(
            machine_id=f"{i:040x}",
            name=f"ws-{i:05d}.contoso.local",
            os_platform="Windows11",
            health_status="Active",
            state="Failed" if i % 3 == 0 else "Succeeded",
            error="ActionFailed: device unreachable" if i % 3 == 0 else None,
        )
        for i in range(5000)
    )
    progress = ProgressView(total=5000, submitted=5000, succeeded=3333, failed=1667)
    return request_view(
        "partially_failed",
        id=7,
        devices=devices,
        exclusions=(),
        warnings=(),
        progress=progress,
        decisions=(DecisionRow(actor_label="bob", approve=True, at=NOW),),
    )


def cjk_devices() -> tuple[DeviceRow, ...]:
    """5,000 devices named in Japanese: three bytes each in UTF-8, six as sent."""
    return tuple(
        DeviceRow(
            machine_id=f"{i:040x}",
            name=f"経理部ノートパソコン-{i:05d}.contoso.local",
            os_platform="Windows11",
            health_status="Active",
            state="Succeeded",
        )
        for i in range(5000)
    )


def all_devices_cjk() -> RequestView:
    """The request of the 5,000 ``cjk_devices``."""
    return request_view("succeeded", id=9, devices=cjk_devices(), exclusions=(), warnings=())


def incident_view(*, closed: bool = False) -> IncidentView:
    return IncidentView(
        id=3,
        source="sentinel",
        external_id="INC-1042",
        title="Ransomware beacon on finance laptops",
        severity="high",
        status="active",
        closed=closed,
        product="Microsoft Defender for Endpoint",
        url="https://portal.azure.com/#view/Microsoft_Azure_Security_Insights/IncidentPage",
        devices=("ws-0024.contoso.local", "ws-0031.contoso.local", "hv-host-01.contoso.local"),
        mention=None if closed else "SOC on call",
    )


def request_views() -> dict[str, RequestView]:
    """The request in each state a card shows."""
    bob_rejects = DecisionRow(
        actor_label="bob", approve=False, at=NOW, reason="wrong tag: Finance Laptops includes the CFO's"
    )
    return {
        "pending": request_view(),
        "executing": _approved(
            "executing", ProgressView(total=31, submitted=12, succeeded=9), _devices(31, state="Pending")
        ),
        "partially-failed": _approved(
            "partially_failed",
            ProgressView(total=31, submitted=31, succeeded=21, failed=10),
            _devices(31, state="Succeeded", fail_every=3, error="MDE reported the action as Failed"),
        ),
        "rejected": request_view("rejected", decisions=(bob_rejects,)),
        "expired": request_view("expired"),
        "cancelled": _approved(
            "cancelled",
            ProgressView(total=31, submitted=4, succeeded=4, cancelled=27),
            _devices(31, state="Cancelled"),
        ),
    }


#: (fixture name, request state, what a person sees) for the request card in each state
_REQUEST_CARDS = (
    ("request-pending", "pending", "The approver sees the request, waiting for approval"),
    ("request-executing", "executing", "After approval the card shows progress"),
    ("request-partially-failed", "partially-failed", "The card in its final state"),
    ("request-rejected", "rejected", "A rejected request says who rejected it and why"),
    ("request-expired", "expired", "A request nobody approved in time"),
    ("request-cancelled", "cancelled", "A request cancelled while it ran"),
)


def fixtures() -> list[Fixture]:
    views = request_views()
    found = [
        Fixture(name, cards.request_card(views[state], (ALICE_TEAMS_ID,)), caption=c)
        for name, state, c in _REQUEST_CARDS
    ]
    pending = found[0].card
    return [
        found[0],
        Fixture("request-reject-reason", pending, open_button="Reject", caption="Reject asks why"),
        Fixture(
            "request-break-glass",
            pending,
            open_button="Break glass",
            caption="Break glass (in the … menu) asks why protected devices must be included",
        ),
        *found[1:],
        Fixture(
            "summary-partially-failed",
            cards.summary_card(views["partially-failed"]),
            caption="The summary in the thread lists each device that did not succeed, once",
        ),
        Fixture(
            "summary-5000-partially-failed",
            cards.summary_card(_summary_5000()),
            caption="A 5,000-device summary: whole rows, and the rest counted",
        ),
        Fixture(
            "all-devices-cjk",
            cards.all_devices_card(all_devices_cjk(), cjk_devices()),
            caption="Show all devices, with 5,000 Japanese names (budgeted in bytes)",
        ),
        Fixture(
            "incident-open",
            cards.incident_card(incident_view()),
            caption="The war room sees the incident notification; requests for it follow in its thread",
        ),
        Fixture(
            "incident-closed",
            cards.incident_card(incident_view(closed=True)),
            caption="The notification, updated when the incident is closed",
        ),
    ]


def slack_messages() -> dict[str, list[dict[str, object]]]:
    """The same views as Block Kit messages."""
    views = request_views()
    messages = {f"request-{state}": request_blocks(view) for state, view in views.items()}
    messages["request-5000-devices"] = request_blocks(_summary_5000())
    messages["incident-open"] = incident_blocks(incident_view())
    messages["incident-closed"] = incident_blocks(incident_view(closed=True))
    return messages


def slack_modals() -> dict[str, dict[str, object]]:
    return {
        "reject-reason": reason_modal(1, break_glass=False),
        "break-glass-reason": reason_modal(1, break_glass=True),
    }
