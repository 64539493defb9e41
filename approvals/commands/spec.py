"""The single table behind both the parser and the help text (house style 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from approvals.commands.models import Verb

TARGET_KINDS_HELP = (
    'device:NAME|ID   tag:"Domain Controllers"   group:"Tier0 Servers"   ip:10.1.2.3   '
    'query:"<KQL returning DeviceId>"   incident:ID   user:alice@contoso.com   file:SHA1  '
    "(mix freely: the union is used)"
)


@dataclass(frozen=True)
class OptionSpec:
    name: str  # without the dashes
    help: str
    takes_value: bool = True
    choices: tuple[str, ...] = ()
    metavar: str = "VALUE"


@dataclass(frozen=True)
class VerbSpec:
    verb: Verb
    summary: str
    usage: str
    options: tuple[OptionSpec, ...] = ()
    examples: tuple[str, ...] = ()
    needs_targets: bool = False
    takes_tag_value: bool = False
    #: the file the command acts on comes first: "sha1" (quarantine) or "path" (collect-file), then "on TARGETS"
    subject: str | None = None
    needs_reason: bool = False
    takes_request_id: bool = False
    aliases: tuple[str, ...] = field(default_factory=tuple)
    #: further usage lines (sub-commands), shown under the first in help
    more_usage: tuple[str, ...] = ()
    #: sentences help shows after the options (e.g. "Times are UTC.")
    notes: tuple[str, ...] = ()


REASON = OptionSpec("reason", "why; MDE records it as the action's comment (required)", metavar='"TEXT"')
DRY_RUN = OptionSpec("dry-run", "show what would happen; request nothing", takes_value=False)
CANARY = OptionSpec("canary", "run N devices first; the rest waits until they succeeded", metavar="N")
COMMON = (REASON, DRY_RUN, CANARY)

VERBS: dict[Verb, VerbSpec] = {
    spec.verb: spec
    for spec in (
        VerbSpec(
            Verb.ISOLATE,
            "isolate devices from the network (needs approval)",
            'isolate TARGETS --reason "…" [--type full|selective|unmanaged] [--for SPAN | --until TIME] '
            "[--active-only] [--canary N] [--dry-run]",
            (
                *COMMON,
                OptionSpec(
                    "type",
                    "isolation type (default full)",
                    choices=("full", "selective", "unmanaged"),
                    metavar="full|selective|unmanaged",
                ),
                OptionSpec("for", "time-boxed: propose the release this long after isolation (8h, 3d)", metavar="SPAN"),
                OptionSpec("until", "time-boxed: propose the release at this UTC time", metavar="2026-12-03T18:00Z"),
                OptionSpec(
                    "active-only",
                    "leave out inactive devices (by default MDE isolates them when they reconnect, within 3 days)",
                    takes_value=False,
                ),
            ),
            (
                'isolate tag:"Ransomware Suspects" --reason "INC-1042 beacon"',
                'isolate ws-0042 device:ws-0043 --reason "IR-7" --type selective',
                'isolate ws-0042 --reason "IR-8 triage" --for 8h',
            ),
            needs_targets=True,
            needs_reason=True,
        ),
        VerbSpec(
            Verb.UNISOLATE,
            "release devices from isolation (needs approval)",
            'unisolate TARGETS --reason "…" [--canary N] [--dry-run]',
            COMMON,
            ('unisolate incident:1042 --reason "contained"',),
            needs_targets=True,
            needs_reason=True,
            aliases=("release",),
        ),
        VerbSpec(
            Verb.TAG,
            "add a device tag (needs approval; bulk, 500 devices per MDE call)",
            'tag "TAG" TARGETS --reason "…" [--dry-run]',
            (REASON, DRY_RUN),
            (
                'tag "INC-1042" query:"DeviceInfo | where DeviceName startswith \'fin-\' | project DeviceId" '
                '--reason "scope"',
            ),
            needs_targets=True,
            takes_tag_value=True,
            needs_reason=True,
        ),
        VerbSpec(
            Verb.UNTAG,
            "remove a device tag (needs approval)",
            'untag "TAG" TARGETS --reason "…" [--dry-run]',
            (REASON, DRY_RUN),
            ('untag "INC-1042" tag:"INC-1042" --reason "closed"',),
            needs_targets=True,
            takes_tag_value=True,
            needs_reason=True,
        ),
        VerbSpec(
            Verb.SCAN,
            "run an antivirus scan (needs approval)",
            'scan TARGETS --reason "…" [--scan quick|full] [--dry-run]',
            (
                *COMMON,
                OptionSpec("scan", "scan type (default quick)", choices=("quick", "full"), metavar="quick|full"),
            ),
            ('scan group:"Finance" --scan full --reason "IOC sweep"',),
            needs_targets=True,
            needs_reason=True,
        ),
        VerbSpec(
            Verb.RESTRICT,
            "restrict app execution to Microsoft-signed code (needs approval)",
            'restrict TARGETS --reason "…" [--dry-run]',
            COMMON,
            ('restrict device:ws-0042 --reason "malware"',),
            needs_targets=True,
            needs_reason=True,
        ),
        VerbSpec(
            Verb.UNRESTRICT,
            "remove the app execution restriction (needs approval)",
            'unrestrict TARGETS --reason "…" [--dry-run]',
            COMMON,
            ('unrestrict device:ws-0042 --reason "cleaned"',),
            needs_targets=True,
            needs_reason=True,
        ),
        VerbSpec(
            Verb.COLLECT,
            "collect an investigation package (needs approval)",
            'collect TARGETS --reason "…" [--dry-run]',
            COMMON,
            ('collect device:ws-0042 --reason "forensics for INC-1042"',),
            needs_targets=True,
            needs_reason=True,
        ),
        VerbSpec(
            Verb.QUARANTINE,
            "stop a file's processes and quarantine it on each device (needs approval)",
            'quarantine sha1:SHA1 [on TARGETS] --reason "…" [--canary N] [--dry-run]',
            COMMON,
            (
                'quarantine sha1:87662bc3d60e4200ceaf7aae249d1c343f4b83c9 --reason "INC-1042 dropper"',
                'quarantine sha1:87662bc3d60e4200ceaf7aae249d1c343f4b83c9 on tag:"Finance Laptops" --reason "INC-1042"',
            ),
            needs_targets=True,
            needs_reason=True,
            subject="sha1",
            notes=(
                "MDE takes the file's SHA-1 only. Without `on TARGETS`, the devices MDE saw the file on (file:SHA1).",
                "Windows 10 (1703 or later) and Windows 11 only; other devices are listed as excluded.",
            ),
        ),
        VerbSpec(
            Verb.COLLECT_FILE,
            "collect one file from one device with live response (needs approval)",
            'collect-file "PATH" on device:NAME --reason "…" [--dry-run]',
            (REASON, DRY_RUN),
            ('collect-file "C:\\Users\\Public\\Downloads\\invoice.pdf.exe" on device:ws-0042 --reason "INC-1042"',),
            needs_targets=True,
            needs_reason=True,
            subject="path",
            notes=(
                "One device per request: MDE runs one live response session per device at a time.",
                "The thread gets a download link valid for 30 minutes; status on the request makes a fresh one.",
            ),
        ),
        VerbSpec(
            Verb.DEVICES,
            "preview what a target resolves to, without acting",
            "devices TARGETS",
            (),
            ('devices tag:"Domain Controllers" group:"Tier0 Servers"',),
            needs_targets=True,
            aliases=("preview",),
        ),
        VerbSpec(Verb.STATUS, "show one request, or every open request", "status [ID]", (), ("status 12",)),
        VerbSpec(
            Verb.CANCEL,
            "cancel a request; stops what has not started, cancels its pending MDE actions",
            'cancel ID [--reason "…"]',
            (REASON,),
            ('cancel 12 --reason "wrong scope"',),
            takes_request_id=True,
        ),
        VerbSpec(
            Verb.HISTORY,
            "recent requests, optionally for one device",
            "history [--limit N] [device:NAME]",
            (OptionSpec("limit", "how many (default 10)", metavar="N"),),
            ("history --limit 20", "history device:ws-0042"),
        ),
        VerbSpec(
            Verb.APPROVE,
            "approve a request (the card's button does the same)",
            "approve ID",
            (),
            ("approve 12",),
            takes_request_id=True,
        ),
        VerbSpec(
            Verb.REJECT,
            "reject a request with a reason",
            'reject ID --reason "…"',
            (REASON,),
            ('reject 12 --reason "wrong host"',),
            takes_request_id=True,
        ),
        VerbSpec(
            Verb.SCHEDULE,
            "tag what a hunting query finds, on a schedule (creating or removing one needs approval)",
            'schedule tag "TAG" query:"<KQL returning DeviceId>" every CADENCE [--sync] --reason "…"',
            (
                OptionSpec("reason", "why; shown on the approval card and in the audit log", metavar='"TEXT"'),
                OptionSpec(
                    "sync",
                    "also remove the tag from devices the query no longer finds",
                    takes_value=False,
                ),
            ),
            (
                'schedule tag "Domain Controllers" query:"DeviceNetworkEvents | where LocalPort == 88 '
                '| distinct DeviceId" every fri 06:00 --sync --reason "replaces the DC tagging Logic App"',
                "schedule list",
                "schedule run 3",
                'schedule remove 3 --reason "replaced by a dynamic tag"',
            ),
            more_usage=("schedule list", 'schedule remove ID --reason "…"', "schedule run ID"),
            notes=(
                "CADENCE: every fri 06:00 | every day 06:00 | every mon,thu 22:30 | every weekdays 07:00 | every 6h.",
                "Times are UTC (06:00 means 06:00 UTC, whatever your time zone).",
                "schedule run ID runs an active schedule now; schedule list shows ids, next and last runs.",
            ),
        ),
        VerbSpec(
            Verb.BLOCK,
            "block a file hash, IP, URL or domain tenant-wide with an MDE indicator (needs approval)",
            'block hash:SHA256|ip:ADDRESS|url:URL|domain:NAME --reason "…" [--for 30d] [--action block|audit|warn] '
            '[--groups "A, B"] [--dry-run]',
            (
                OptionSpec("reason", "why; becomes the indicator's description in MDE (required)", metavar='"TEXT"'),
                OptionSpec("for", "how long the indicator lives (default and maximum from the policy)", metavar="30d"),
                OptionSpec(
                    "action",
                    "block (default), audit (alert only) or warn (users may bypass)",
                    choices=("block", "audit", "warn"),
                    metavar="block|audit|warn",
                ),
                OptionSpec("groups", "only these device groups (default: every device)", metavar='"A, B"'),
                DRY_RUN,
            ),
            (
                "block hash:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 "
                '--reason "INC-1042 dropper"',
                'block domain:evil.example.com --for 7d --reason "INC-1042 C2"',
                'block ip:203.0.113.7 --action audit --reason "watch INC-1042 C2"',
            ),
            notes=(
                "hash: is a SHA-256 (64 hex), SHA-1 (40) or MD5 (32); ip: takes one external address (no ranges).",
                "The card warns when a file was seen on many devices or an IP is in an allow-listed range.",
            ),
        ),
        VerbSpec(
            Verb.UNBLOCK,
            "remove an indicator this bot created (needs approval)",
            'unblock hash:SHA256|ip:ADDRESS|url:URL|domain:NAME --reason "…"',
            (REASON,),
            ('unblock domain:evil.example.com --reason "false positive, INC-1042"',),
        ),
        VerbSpec(
            Verb.INDICATORS,
            "the indicators this bot created in MDE, soonest expiry first",
            "indicators",
            (),
            ("indicators",),
        ),
        VerbSpec(
            Verb.ISOLATED,
            "the devices isolated now, grouped by incident or request, with age and planned end",
            "isolated [TARGETS] [--older-than SPAN]",
            (OptionSpec("older-than", "only devices isolated longer ago than 30m, 12h, 3d, 2w…", metavar="SPAN"),),
            ("isolated", 'isolated tag:"Finance Laptops"', "isolated incident:1042", "isolated --older-than 3d"),
            notes=("history device:NAME shows one device's containment timeline.",),
        ),
        VerbSpec(
            Verb.ADOPT,
            "keep an isolated device isolated on purpose, with a reason: takes an isolation made outside the bot "
            "into the register, and stops reminders",
            'adopt device:NAME --reason "…"',
            (OptionSpec("reason", "why it stays isolated; kept in the register and the audit log", metavar='"TEXT"'),),
            ('adopt device:ws-0042 --reason "isolated by the SOC lead from the portal for INC-1042"',),
        ),
        VerbSpec(Verb.DOCTOR, "check this deployment (admins only)", "doctor", (), ("doctor",)),
        VerbSpec(Verb.HELP, "this help, or help for one command", "help [COMMAND]", (), ("help isolate",)),
    )
}

ALIASES = {alias: spec.verb for spec in VERBS.values() for alias in spec.aliases}
MAX_INPUT = 4000
MAX_TAG = 200
MAX_CANARY = 1000
