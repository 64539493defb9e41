"""Large requests at interactive speed: how long the card, the click and the first MDE call take at N devices.

    python benchmarks/large_request.py --n 1000,10000,100000 [--database URL] [--profile preview|approve]

For each N, a tenant where N devices carry one tag runs in its own process (``benchmarks/sim_process.py``, so
its memory and CPU are not the bot's); the bot (this process) tags every device that tag matches, as a new
user would, and one JSON line is printed with:

* ``preview_s``: command received -> request stored and its card rendered (Slack blocks and Teams card);
* ``view_s``, ``render_s``: one card refresh: the request's view read from storage, then both cards rendered;
* ``preview_cpu_s``: the bot process's CPU time in that span (all its threads, so SQLite's too; not the
  simulator's or PostgreSQL's): steadier than ``preview_s`` on a shared machine;
* ``approve_s``: approve click received -> the answer the platform gets;
* ``recorded_s``: click -> the approval's state change (``requests.approved_at``): the click's own transaction;
  what else ``approve_s`` holds is the card's view in the answer;
* ``jobs_s``: click -> a worker has written the jobs, in the background (the creating transaction's PROGRESS
  event, stamped after its inserts);
* ``first_action_s``: click -> the first MDE call of the run (the simulator's request log; CLOCK_MONOTONIC is
  system-wide, so the two processes' clocks compare);
* ``execute_s``: click -> the request's summary stored;
* ``rss_mb``: the bot process's peak resident memory so far (ru_maxrss; sizes run in increasing order).

Goals (issue 18): at 100,000 devices card <= 5 s, click <= 1 s, first MDE call <= 2 s after the click,
RSS <= 400 MB; at 1,000 everything well under 1 s. ``--profile`` prints the top of cProfile for one phase.

Where the time went (cProfile, 2026-12-02, SQLite, 2-core machine shared with other jobs, so absolute
figures are high; the proportions are what matter):

* Before: a 10,000-device preview took 26.6 s, 24 of them inserting one ORM object per device (one driver
  round trip each); at 100,000 the listing also read every page after the first again (a paging bug: 550,000
  rows for 100,000 devices, 204 s). Approval did the same row-at-a-time work for jobs and device states.
* Fixed: one executemany per table for devices, exclusions and jobs; enqueue_jobs set-based; the card's rows
  read as plain rows; the paging bug. 100,000 devices: preview 274 -> 32 s, click 39 -> 12 s, first MDE
  call 4.7 -> 2.3 s, RSS 1,734 -> 544 MB; 1,000 devices: preview 1.25 -> 0.63 s, click 0.52 -> 0.13 s.
* Then, at 100,000 (profiled, preview 59 s and click 14 s under the profiler): building the request view
  was the largest part: ~12 s per view, paid once for the card, once for the click's answer and again on
  every card refresh, because ``RequestView.devices`` materialises every device of the snapshot although
  a card shows a few rows and counts. Then listing and parsing the pages (19 s: JSON, ``Machine.from_api``,
  two datetime parses per device), the bulk insert (~11 s) and exclusion rules (4.7 s, protection
  patterns). The fix for the first is a view that carries counts, the first rows and the not-succeeded
  rows, with "show all" and the CSV paging from storage.
* The view of counts (2026-12-02 afternoon, ``approvals/requests/views.py``): one GROUP BY answered by an index
  and LIMITed rows in name order. ``view_s`` (one card refresh) at 1,000 / 10,000 / 100,000 devices: SQLite
  0.013 / 0.88 / ~5.8 s -> 0.006 / 0.008 / 0.035 s, PostgreSQL 0.055 / 0.31 / ~5.5 s -> 0.023 / 0.031 / 0.099 s
  (100,000 "before" timed on ``build_view`` alone); rendering both cards stays under 1 ms. What is left of
  the card at 100,000 is listing, parsing and storing the snapshot: the view in it takes 20 ms.
* The click's own transaction (2026-12-02 afternoon): it used to create every job (100,000 inserts and device
  updates); now it records the decision and the state only (``recorded_s`` 0.01 s at 1,000 and at 100,000) and
  a worker creates the jobs in the background (``jobs_s`` 1.0 s at 100,000 on SQLite). With the view of counts
  and first rows, 100,000 devices on SQLite: click 10.9 -> 0.22 s, first MDE call 1.8 -> 1.2 s (same machine,
  loaded; before = both changes absent); on PostgreSQL click 0.38 s, jobs 2.2 s, first MDE call 2.3 s, most of
  the jobs' transaction reading the 100,000 device rows in order and marking them queued (a tag request has
  only 200 jobs; not profiled further). While the view was still built from every device, it held the event
  loop the worker shares for seconds and the first submissions waited for it (9.1 s): the two go together.
* Listing, parsing, exclusions and the insert (2026-12-02 afternoon; phase by phase, wall time with the bot
  process's CPU time in brackets, the same load for both, 100,000 devices, SQLite / PostgreSQL):

  ===========================  ==============================  ==============================
  phase                        SQLite before -> after          PostgreSQL before -> after
  ===========================  ==============================  ==============================
  listing and parsing pages    5.0 (2.6) -> 3.0 (1.6) s        10.6 (2.9) -> 4.1 (1.6) s
  exclusion rules              1.1 (1.0) -> 0.4 (0.4) s        1.5 (1.0) -> 0.9 (0.4) s
  insert, audit, commit        2.9 (2.6) -> 1.4 (1.1) s        4.8 (2.0) -> 2.6 (0.6) s
  whole preview                12.4 (8.6) -> 8.3 (5.8) s       20.1 (8.1) -> 11.2 (5.2) s
  bot RSS                      536 -> 357 MB                   527 -> 334 MB
  ===========================  ==============================  ==============================

  The cyclic garbage collector was most of the listing: a page decodes into ~60,000 containers, none in a
  cycle, and their count set off six full collections per listing, each walking every live object (1.4 to
  2.8 s in all). A page is now decoded and mapped 2,000 devices per collector pause (``mde.gcpause``): no
  full collection. The phases were timed by wrapping ``Resolver._match``, ``Resolver._apply_exclusions``
  and ``RequestFlows.create`` (wall clock, ``time.process_time``, ``gc.callbacks``).
  ``Machine`` keeps no copy of the device's JSON (nothing read it; it was most of the memory), parses MDE's
  timestamps with one ``fromisoformat`` and shares repeated texts. Capability verdicts are cached per
  platform, version and build, and the protection rules compiled once per request
  (``approvals.policy.protection.Classifier``). The snapshot goes in column by column through the columns'
  own bind processors and then one ``executemany`` (SQLite) or one ``COPY`` (PostgreSQL,
  ``approvals.bulk``), where SQLAlchemy's ``insert()`` built and processed a parameter dict per row.
  Left in these phases: the simulator serving the pages (another process: filtering its tenant and
  ``json.dumps`` of a 7 MB page, the gap between wall and CPU time above), the JSON decoding (~0.07 s a
  page) and the mapping (~5 us a device); the insert's own driver time and the audit row that lists every
  device. Still the largest part of the preview: building the view (~3 to 5 s per view at this load, half of
  it the collector again, about five full collections each), which the view of counts and first rows (above)
  removes.
* With the three changes (13:50, machine nearly idle, before = the morning's code): 100,000 devices, preview
  SQLite 10.4 -> 5.1 s (CPU 8.6 -> 4.2 s), PostgreSQL 14.4 -> 5.7 s (CPU 11.1 -> 3.4 s); RSS 564 -> 238 MB and
  543 -> 234 MB; 10,000: 1.0 -> 0.43 s and 1.1 -> 0.55 s; 1,000: 0.14 -> 0.09 s and 0.22 -> 0.12 s. Phase by
  phase at 100,000 on SQLite (preview 4.3 s that run): listing and parsing 2.5 s (CPU 1.6, no full collection),
  exclusion rules 0.4 s, insert and commit 1.2 s, view 0.1 s. What is left is the simulator serving ten 7 MB
  pages, JSON decoding and mapping (~1.2 s CPU for 100,000 devices), and the insert's driver time.
* The next page fetched ahead (14:00-14:13, ``iter_machines(prefetch=True)`` for tag and group targets): page
  k+1 is requested while page k is mapped. ``preview_s`` at 100,000, before -> after, six runs each, alternated,
  machine load 1.2-4: SQLite 7.83 / 5.28 / 4.31 / 4.02 / 4.18 / 5.37 -> 4.64 / 4.33 / 4.73 / 3.77 / 4.80 / 5.74 s
  (median 4.7 both), PostgreSQL 6.04 / 5.37 / 4.29 / 4.36 / 5.17 / 5.53 -> 5.17 / 5.10 / 3.97 / 4.12 / 4.23 / 5.06 s
  (median 5.3 -> 4.7, faster in each pair); 10,000 (one page): unchanged, 0.39-0.93 s. The listing alone,
  alternated six times: 2.68 -> 2.54 s median. What it cannot hide: the simulator serving a page (~0.11 s from
  request to headers: filtering its tenant and ``json.dumps`` of 7.4 MB) is longer than mapping one (~0.05 s), and
  the next request can leave only once the page's body, which holds its nextLink, is read and decoded.
* Job creation in pieces (2026-12-02, 14:10, machine loaded by other jobs; 100,000 devices, a tag request: 200
  jobs of 500 devices). Each statement of the creating transaction timed on PostgreSQL: marking the 100,000
  devices queued 1.2 to 2.7 s of a 2.0 to 3.9 s transaction (EXPLAIN ANALYZE: ~30 us a row, the new row
  version and its entry in each of the four indexes; dropping ``ix_request_devices_request_counts`` did not
  change it), reading the 100,000 rows in priority order ~0.2 s (a sort), the 200 job rows nothing. The write
  is the work itself, so the first 2,000 devices (riskiest first) are now written and committed in their own
  transaction, claimed and called while the rest is written (``approvals.execution.preparing``); SQLite keeps
  one piece (its one writer made the first claim wait for the next piece: first call no sooner, jobs 0.7 ->
  1.1 s). ``jobs_s`` / ``first_action_s``, two runs each, before -> after: PostgreSQL 1.65 / 1.71 and
  2.23 / 2.33 -> 2.73 / 1.25 and 2.74 / 1.29 s (every job a little later, the first call ~1 s sooner);
  SQLite 0.73 / 0.83 and 0.70 / 0.84 -> 0.63 / 0.74 and 0.69 / 0.78 s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import resource
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approvals.db import utcnow
from approvals.identity import Origin
from approvals.outbox.models import Event, EventKind
from approvals.requests.models import RequestRecord
from benchmarks.common import BENCH_TAG, SimProcess, bench_engine, emit
from bot.console.repl import console_actor
from bot.slack.blocks import request_blocks
from bot.teams.cards import request_card

ORIGIN = Origin("console", "bench")


class _Phase:
    """Times one phase, and profiles it when asked."""

    def __init__(self, name: str, profile: str | None) -> None:
        self.name, self.profiler = name, cProfile.Profile() if profile == name else None
        self.seconds = self.cpu_seconds = 0.0

    def __enter__(self) -> _Phase:
        self._start, self._cpu = time.perf_counter(), time.process_time()
        if self.profiler:
            self.profiler.enable()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.profiler:
            self.profiler.disable()
            out = io.StringIO()
            pstats.Stats(self.profiler, stream=out).sort_stats("cumulative").print_stats(35)
            print(out.getvalue(), file=sys.stderr)
        self.seconds = time.perf_counter() - self._start
        self.cpu_seconds = time.process_time() - self._cpu


async def run(n: int, time_scale: float, db_url: str | None, profile: str | None) -> dict[str, Any]:
    async with SimProcess(n, time_scale) as sim, bench_engine(sim.url, time_scale, db_url) as engine:
        db = engine.db
        with _Phase("preview", profile) as preview:
            reply = await engine.chatops.handle(
                console_actor("alice"), ORIGIN, f'tag "Contained" tag:"{BENCH_TAG}" --reason "benchmark"'
            )
            assert reply.request is not None, reply.text
            card_bytes = len(json.dumps(request_card(reply.request)).encode())
            blocks = request_blocks(reply.request)
        started = time.perf_counter()  # what every card refresh pays: read the view, render both cards
        view = await engine.chatops.view(reply.request.id)
        view_s = time.perf_counter() - started
        request_card(view), request_blocks(view)
        render_s = time.perf_counter() - started - view_s
        async with httpx.AsyncClient(base_url=sim.url) as admin:
            seen = len((await admin.get("/_sim/requests")).json())
            clicked, clicked_at = time.monotonic(), utcnow()
            with _Phase("approve", profile) as approve:
                decision = await engine.chatops.decide(console_actor("bob"), reply.request.id, approve=True)
                assert not decision.error, decision.text
            first_call = None
            while True:
                async with db.sessions() as session:
                    record = await session.get(RequestRecord, reply.request.id)
                    assert record is not None
                    done = record.summarized_at is not None
                    prepared = await session.scalars(
                        select(Event).where(Event.request_id == record.id, Event.kind == EventKind.PROGRESS.value)
                    )
                    made = next((e.created_at for e in prepared if "prepared" in (e.payload or {})), None)
                    stamps = record.approved_at, made
                if first_call is None:
                    log = (await admin.get("/_sim/requests", params={"since": seen})).json()
                    calls = [e["time"] for e in log if e["family"] == "machine_tags"]
                    first_call = min(calls) if calls else None
                if done:
                    break
                await asyncio.sleep(0.05)
            execute_s = time.monotonic() - clicked
            stats = (await admin.get("/_sim/stats")).json()
    return {
        "n": n,
        "database": "postgresql" if db_url and db_url.startswith("postgres") else "sqlite",
        "devices_on_card": reply.request.device_count,
        "preview_s": round(preview.seconds, 3),
        "view_s": round(view_s, 4),
        "render_s": round(render_s, 4),
        "preview_cpu_s": round(preview.cpu_seconds, 3),
        "approve_s": round(approve.seconds, 3),
        "recorded_s": round((stamps[0] - clicked_at).total_seconds(), 3) if stamps[0] else None,
        "jobs_s": round((stamps[1] - clicked_at).total_seconds(), 3) if stamps[1] else None,
        "first_action_s": round(first_call - clicked, 3) if first_call is not None else None,
        "execute_s": round(execute_s, 3),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "teams_card_bytes": card_bytes,
        "slack_blocks": len(blocks),
        "http_429": stats["http_429"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,10000", help="comma-separated sizes, run in increasing order")
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument(
        "--database", help="a PostgreSQL server URL: a new database is made on it per size (default: SQLite file)"
    )
    parser.add_argument("--profile", choices=["preview", "approve"], help="print cProfile's top for one phase")
    args = parser.parse_args()
    for n in sorted(int(x) for x in args.n.split(",")):
        emit(await run(n, args.time_scale, args.database, args.profile))


if __name__ == "__main__":
    asyncio.run(main())
