"""Fetch one school's full snapshot: versions, the six collections concurrently, verified.

Fetching (`api.client`), checking that nothing was skipped (`api.paging`) and saving
(`archive.snapshot.SnapshotWriter`) are separate; this module runs them together for one school
and decides whether the result may be called complete.

Per collection, a pass pages through with overlapping pages (see `api.paging`) and streams each
page into the snapshot as it arrives. The pass is *stable* when the pages chain without a break,
every `X-Total-Count` seen during the pass agrees, and the distinct records saved match it. An
unstable pass is thrown away and the collection fetched again (`endpoint_attempts` in all); if
it never settles, the snapshot is not complete and the reason says which collection and why.
Some passes must also read the same twice (ids and content hashes) before they count as stable:
see `_SchoolFetch.needs_second_read`.

Pages are read in the server's own order: `sort` costs a provider an unindexed sort of the whole
collection on every page, and the chain and the totals prove a pass complete without it. Only
once a pass in that order did not hold are the later passes asked for `sort=sourcedId` (see
`_SchoolFetch.fetch_collection`); the snapshot records per collection which order was read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from .api.auth import TokenAuthenticator
from .api.client import OneRosterClient, RequestCounter
from .api.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_ENDPOINT_ATTEMPTS,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT_S,
    PRODUCTION_BASE_URL,
)
from .api.errors import ApiError, AuthError, FetchError
from .api.paging import PageChain, PageSummary, planned_offsets
from .api.retry import RetryPolicy
from .archive.layout import ArchiveError
from .archive.snapshot import (
    ConflictingRecordsError,
    EndpointStats,
    PublishRefused,
    SnapshotDataError,
    SnapshotMeta,
    SnapshotWriter,
    parse_drop_fields,
    utc_now,
)
from .canonical import canonical_with_hash
from .interrupts import FetchInterrupts
from .loopback import is_loopback
from .model import COLLECTIONS, ENTITY_BY_COLLECTION

T = TypeVar("T")


@dataclass(frozen=True)
class EndpointProgress:
    """One update for a progress display: records saved so far for a collection."""

    estab: str
    school_name: str | None
    collection: str
    records: int
    total: int | None
    attempt: int
    done: bool = False
    note: str | None = None


ProgressCallback = Callable[[EndpointProgress], None]


@dataclass(frozen=True)
class FetchSettings:
    """How hard and how fast to fetch; the defaults suit Xporter."""

    page_size: int = DEFAULT_PAGE_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    endpoint_attempts: int = DEFAULT_ENDPOINT_ATTEMPTS
    timeout_s: float = DEFAULT_TIMEOUT_S
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.page_size < 2:
            raise ValueError("page size must be at least 2 (pages overlap by one record)")
        if self.concurrency < 1 or self.endpoint_attempts < 1:
            raise ValueError("concurrency and endpoint attempts must be at least 1")


@dataclass
class FetchOutcome:
    """What a fetch produced. `path` is None when nothing was kept (an incomplete fetch
    without `allow_partial`); `reason` says why a snapshot is not complete."""

    path: Path | None
    complete: bool
    stable: bool
    reason: str | None
    estab: str
    school_name: str | None = None
    record_counts: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)


def public_base_url(base_url: str) -> str:
    """The base URL as recorded: no user info, no query (nothing secret reaches the file)."""
    parts = urlsplit(base_url.rstrip("/"))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class InsecureTransportError(ValueError):
    """Plain HTTP to another machine, not allowed (a usage error: CLI exit status 2)."""


def refuse_plain_http(base_url: str, allow_insecure_http: bool) -> None:
    """Refuse `http://` to any host but this machine unless allowed: the Basic credential
    (the shared secret) and every bearer token would cross the network in clear."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme.lower() != "http" or allow_insecure_http or is_loopback(host):
        return
    raise InsecureTransportError(
        f"base URL {public_base_url(base_url)!r} is plain http:// to {host}, which is not this "
        "machine: the shared secret and every token would cross the network in clear. Use "
        "https://, or, only on a network you trust, pass --allow-insecure-http (in the config "
        "file: allow_insecure_http = true)"
    )


async def _gather_or_cancel(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest, then raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _UnstablePass(Exception):
    """A pass that cannot be trusted and ends early (a record changed between two reads)."""


@dataclass
class _PassResult:
    problems: list[str]
    total: int | None
    ordered: bool
    pages: int
    seen: dict[str, str] = field(default_factory=dict)  # {sourcedId: hash} of a comparing read
    front: list[tuple[str, str]] = field(default_factory=list)  # (sourcedId, hash) of page one
    # Page one came without X-Total-Count in the server's own order: the pass stopped there,
    # to be made again asking for `sort` (see `one_pass`).
    wants_sort: bool = False


# How a collection's records were read (`EndpointStats.order`).
SERVER_ORDER, SORTED, WHOLE = "server", "sorted", "whole"


class _SchoolFetch:
    """One school's fetch: one HTTP client, one snapshot writer, one writer thread."""

    def __init__(
        self,
        client: OneRosterClient,
        writer: SnapshotWriter,
        *,
        estab: str,
        school_name: str | None,
        settings: FetchSettings,
        allow_partial: bool,
        progress: ProgressCallback | None,
        interrupts: FetchInterrupts | None = None,
    ) -> None:
        self.interrupts = interrupts
        self.client = client
        self.writer = writer
        self.estab = estab
        self.school_name = school_name
        self.settings = settings
        self.allow_partial = allow_partial
        self.progress = progress
        # SQLite is written from this one thread only, so the event loop keeps the connections
        # busy while a page is being stored.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-writer")
        # Pages held in memory at once (fetched, not yet stored): memory stays flat however big
        # the school is.
        self.page_slots = asyncio.Semaphore(settings.concurrency * 2)

    async def write(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: function(*args, **kwargs))

    def report(
        self, collection: str, records: int, total: int | None, attempt: int, **kw: Any
    ) -> None:
        if self.progress is not None:
            self.progress(
                EndpointProgress(
                    self.estab, self.school_name, collection, records, total, attempt, **kw
                )
            )

    async def fetch_collection(self, collection: str) -> EndpointStats:
        """Page through a collection until a pass is stable (at most `endpoint_attempts`),
        else read it whole.

        The first pass reads in the server's own order. If it does not hold (a chain break, a
        total that disagrees, a second read that differs), the server's order may be what
        failed (one that reshuffles between requests cannot be paged), so every later pass
        asks for `sort=sourcedId`. That failure counts as the collection changing: a second
        read then confirms. A server that sends no X-Total-Count is asked for `sort` from its
        first page on (see `one_pass`).
        """
        stats = EndpointStats(attempts=0, order=SERVER_ORDER)
        counter = RequestCounter()
        started = time.monotonic()
        problems: list[str] = []
        churned = False  # seen changing in an earlier attempt of this fetch
        sort = False  # asked for once the server's own order has let a pass down
        result: _PassResult | None = None
        read_twice = False
        try:
            for attempt in range(1, self.settings.endpoint_attempts + 1):
                stats.attempts = attempt
                if attempt > 1:
                    await self.write(self.writer.reset, collection)
                    await asyncio.sleep(self.settings.retry_policy.backoff_s(attempt - 1))
                result = await self.one_pass(
                    collection, counter, stats, attempt, save=True, sort=sort
                )
                if result.wants_sort:
                    sort = True
                    stats.order_reason = (
                        "sort=sourcedId asked: the server sends no X-Total-Count, so nothing "
                        "would show a record its own order never served"
                    )
                    await self.write(self.writer.reset, collection)
                    result = await self.one_pass(
                        collection, counter, stats, attempt, save=True, sort=sort
                    )
                problems = result.problems
                stats.total_count_seen = result.total
                saved: dict[str, str] | None = None
                if not problems and self.needs_second_read(result, churned):
                    if saved is None:
                        saved = await self.write(self.writer.hashes, collection)
                    confirm = await self.one_pass(
                        collection, counter, stats, attempt, save=False, sort=sort
                    )
                    problems = confirm.problems or compare_reads(saved, confirm.seen)
                    read_twice = True
                elif not problems and not sort:
                    problems = await self.check_front(collection, counter, stats, result)
                if not problems:
                    break
                # A failed pass counts as the collection changing, whatever the order: a sorted
                # pass after it must then read the same twice. (Even when the failed pass's
                # records all reappear, one removed and another inserted may be why it failed.)
                churned = True
                if sort:
                    continue
                sort = True
                stats.order_reason = (
                    f"sort=sourcedId asked from attempt {attempt + 1}, as the server's own "
                    f"order did not hold: {problems[0]}"
                )
            if problems:
                problems = await self.read_whole(collection, counter, stats, problems)
        except (FetchError, SnapshotDataError) as exc:
            error = exc if isinstance(exc, FetchError) else _as_fetch_error(exc)
            if not self.allow_partial:
                raise error from None
            problems = [str(error)]
        finally:
            stats.requests = counter.requests
            stats.retries = counter.retries
            stats.duration_s = time.monotonic() - started
        stats.records = await self.write(self.writer.count, collection)
        stats.stable = stats.complete = not problems
        if stats.order != WHOLE:
            self.describe_order(stats, collection, result, sort, read_twice, problems)
        if problems:
            stats.note = _summarise(problems)
            if churned:
                stats.note = f"not stable after {stats.attempts} attempts: {stats.note}"
        self.report(
            collection,
            stats.records,
            stats.total_count_seen,
            stats.attempts,
            done=True,
            note=stats.note,
        )
        return stats

    async def read_whole(
        self, collection: str, counter: RequestCounter, stats: EndpointStats, problems: list[str]
    ) -> list[str]:
        """Paging never settled: ask for the whole collection in one answer, as Xporter serves
        it when `limit` is omitted. One answer cannot skip or repeat a record however the server
        orders or changes it, but a server may cap it silently, so it counts only when its
        X-Total-Count vouches for it and it holds every record the paging saw. Returns the
        problems left (none when it counts)."""
        seen_while_paging = await self.write(self.writer.ids, collection)
        await self.write(self.writer.reset, collection)
        try:
            async with self.page_slots:
                page = await self.client.get_page(collection, offset=0, limit=None, counter=counter)
                self.note_warnings(stats, page.warnings)
                await self.write(self.writer.save_records, collection, page.records, offset=0)
        except FetchError as exc:
            return [*problems, f"reading it whole in one request failed too: {exc}"]
        stats.pages += 1
        held = await self.write(self.writer.ids, collection)
        total = page.total_count
        self.report(collection, len(held), total, stats.attempts)
        if total is None:
            why = "no X-Total-Count came with it to show it was not cut short"
        elif len(held) != total:
            why = f"it held {len(held)} records but X-Total-Count says {total}"
        elif missing := len(seen_while_paging - held):
            why = f"{missing} records seen while paging are not in it"
        else:
            stats.total_count_seen = total
            stats.order = WHOLE
            stats.order_reason = (
                f"paging did not settle in {stats.attempts} attempts (the server's own order, "
                "then sort=sourcedId): read in one request, verified against X-Total-Count"
            )
            stats.note = (
                "read whole in one request (verified against X-Total-Count) after "
                f"{stats.attempts} paged attempts did not settle, e.g. {problems[0]}"
            )
            return []
        return [*problems, f"reading it whole in one request did not help: {why}"]

    async def check_front(
        self, collection: str, counter: RequestCounter, stats: EndpointStats, kept: _PassResult
    ) -> list[str]:
        """Problems when the front of the server's order changed after page one was read.

        Page one is read alone, before every other page, and a record replaced inside its span
        afterwards shifts no later boundary: where a server puts new records first (newest
        first), a removal and an insertion there would pass the chain and the totals unseen.
        So a pass in the server's own order ends by reading that span again, at offset 1 (a
        request the pass has not made, so no cache can answer it with page one's answer; only
        the first record's slot is left to the totals): one request per pass.
        """
        front = kept.front
        if len(front) < 2:
            return []  # nothing to compare (such a pass is read twice anyway)
        entity = ENTITY_BY_COLLECTION[collection]
        dropped = self.writer.dropped_fields(collection)
        async with self.page_slots:
            page = await self.client.get_page(
                collection, offset=1, limit=self.settings.page_size, counter=counter
            )
        stats.pages += 1
        self.note_warnings(stats, page.warnings)
        again = [
            (record["sourcedId"], canonical_with_hash(entity, record, dropped)[1])
            if isinstance(record, dict) and isinstance(record.get("sourcedId"), str)
            else ("", "")
            for record in page.records[: len(front) - 1]
        ]
        if page.total_count is not None and page.total_count != kept.total:
            return [f"X-Total-Count changed while paging (from {kept.total} to {page.total_count})"]
        if again != front[1:]:
            return [
                "the first page changed while paging: read again at offset 1 at the end of the "
                "pass, its records were no longer the same"
            ]
        return []

    def describe_order(
        self,
        stats: EndpointStats,
        collection: str,
        kept: _PassResult | None,
        sort: bool,
        read_twice: bool,
        problems: list[str],
    ) -> None:
        """Say in the metadata which order the kept records were read in, and why."""
        refused = collection in self.client.sort_refused
        if problems or kept is None:
            stats.order = SORTED if sort and not refused else SERVER_ORDER
            read = stats.order_reason or "read in the server's own order"
            stats.order_reason = f"{read}; not complete (see note)"
            return
        if not sort:
            proofs = ["the pages chained"]
            if kept.total is not None:
                proofs.append("matched X-Total-Count")
            if read_twice:
                proofs.append("read the same twice")
            stats.order_reason = f"its own order held: {', '.join(proofs)}; no sort asked"
            return
        if kept.ordered and not refused:
            stats.order = SORTED
            return
        stats.order = SERVER_ORDER
        if refused:
            why = "the server refused it (HTTP 400)"
        else:
            why = "the server ignored it (the pages did not ascend)"
        stats.order_reason = f"{stats.order_reason}; {why}, so read in its own order"

    @staticmethod
    def note_warnings(stats: EndpointStats, warnings: list[str]) -> None:
        for warning in warnings:
            if warning not in stats.warnings and len(stats.warnings) < 10:
                stats.warnings.append(warning)

    def needs_second_read(self, result: _PassResult, churned: bool) -> bool:
        """Whether a pass that looks stable must be confirmed by reading it all again.

        The chain proves nothing was skipped and the totals catch any net change, but a record
        removed and another inserted between two boundaries leave both unchanged. So a
        collection already seen changing, one read without a total in an order that is not
        by sourcedId (the chain then rests on an order nobody promised: the server's own, or a
        `sort` it ignored), and one small enough to read again in a single concurrent round
        must read the same twice.
        """
        return (
            churned
            or (result.total is None and not result.ordered)
            or result.pages <= self.settings.concurrency
        )

    async def one_pass(
        self,
        collection: str,
        counter: RequestCounter,
        stats: EndpointStats,
        attempt: int,
        *,
        save: bool,
        sort: bool = False,
    ) -> _PassResult:
        """Page through a collection once: into the snapshot (`save`), or into a map of
        {sourcedId: hash} to compare with what was saved. In the server's own order, or
        asking for `sort=sourcedId` (checked, not trusted: see `PageChain.ordered`)."""
        chain = PageChain()
        first_total_index = len(counter.total_counts)
        seen: dict[str, str] = {}
        entity = ENTITY_BY_COLLECTION[collection]
        dropped = self.writer.dropped_fields(collection)
        saved = 0
        pages = 0
        end_offset: int | None = None  # lowest offset that came back empty
        front: list[tuple[str, str]] = []  # page one, for `check_front`

        def remember(records: list[Any], offset: int) -> None:
            for record in records:
                if not isinstance(record, dict) or not isinstance(record.get("sourcedId"), str):
                    raise _UnstablePass(f"a record without sourcedId at offset {offset}")
                record_hash = canonical_with_hash(entity, record, dropped)[1]
                if seen.setdefault(record["sourcedId"], record_hash) != record_hash:
                    raise _UnstablePass(f"record {record['sourcedId']!r} changed between two reads")

        async def fetch_and_save(offset: int) -> PageSummary:
            nonlocal saved, end_offset, pages
            async with self.page_slots:
                page = await self.client.get_page(
                    collection,
                    offset=offset,
                    limit=self.settings.page_size,
                    counter=counter,
                    sort=sort,
                )
                summary = PageSummary.of(offset, page.records)
                self.note_warnings(stats, page.warnings)
                if not save:
                    remember(page.records, offset)
                else:
                    if offset == 0 and not sort:
                        front.extend(
                            (r["sourcedId"], canonical_with_hash(entity, r, dropped)[1])
                            for r in page.records
                            if isinstance(r, dict) and isinstance(r.get("sourcedId"), str)
                        )
                    try:
                        result = await self.write(
                            self.writer.save_records, collection, page.records, offset=offset
                        )
                    except ConflictingRecordsError as exc:
                        if exc.within_page:
                            raise
                        raise _UnstablePass(
                            f"record {exc.sourced_id!r} changed between two reads "
                            f"(again at offset {offset})"
                        ) from None
                    saved += result.inserted
            stats.pages += 1
            pages += 1
            chain.add(summary)
            if summary.count == 0:
                end_offset = offset if end_offset is None else min(end_offset, offset)
            if save:
                self.report(collection, saved, page.total_count, attempt)
            return summary

        async def fetch_all(offsets: list[int]) -> None:
            queue = iter(sorted(set(offsets) - set(chain.pages)))

            async def worker() -> None:
                for offset in queue:
                    # Past an empty page there is nothing left to fetch (a total that was too
                    # high, or a guess past the end).
                    if end_offset is not None and offset > end_offset:
                        continue
                    await fetch_and_save(offset)

            workers = min(self.settings.concurrency, len(offsets))
            await _gather_or_cancel([worker() for _ in range(workers)])

        try:
            first = await fetch_and_save(0)
            has_total = len(counter.total_counts) > first_total_index
            total = counter.total_counts[-1] if has_total else None
            if total is None and not sort and first.count > 0:
                # Without a total nothing counts the records, and the chain checks only the one
                # record where two pages overlap: in an order with ties (ORDER BY a non-unique
                # column), records can trade places with the offset asked, so that one is never
                # served, while every page still chains and reads the same twice. Only an order
                # by a unique key rules that out: such a collection is read sorted.
                return _PassResult([], None, False, pages, wants_sort=True)
            await fetch_all(planned_offsets(first, total))
            while (offset := chain.next_offset()) is not None:
                if end_offset is not None and offset > end_offset:
                    # Records now reach past an offset that came back empty in this pass: the
                    # collection grew while paging (it could do so as fast as it is read).
                    chain.breaks.append(
                        f"the collection grew while paging: offset {end_offset} was empty, and "
                        f"records now reach offset {offset}"
                    )
                    break
                if total is None and first.count >= 2:
                    # No total: guess the next few pages, assuming full pages; the ones past
                    # the end come back empty and cost one small request each.
                    step = first.count - 1
                    await fetch_all([offset + k * step for k in range(self.settings.concurrency)])
                else:
                    await fetch_all([offset])
        except _UnstablePass as exc:
            return _PassResult([str(exc)], None, False, pages)
        totals = counter.total_counts[first_total_index:]
        problems = list(chain.breaks)
        distinct = await self.write(self.writer.count, collection) if save else len(seen)
        if len(set(totals)) > 1:
            problems.append(
                f"X-Total-Count changed while paging (from {totals[0]} to {totals[-1]})"
            )
        elif totals and distinct != totals[0]:
            problems.append(
                f"{distinct} distinct records were returned but X-Total-Count says {totals[0]}"
            )
        return _PassResult(
            problems, totals[-1] if totals else None, chain.ordered, pages, seen, front
        )

    async def version(self, path: str) -> Any:
        """`/version` and `/auth/version` for provenance: recorded, never fatal (a server may
        not serve them, or guard `/auth/version` with other credentials)."""
        try:
            return await self.client.get_document(path, counter=RequestCounter())
        except ApiError as exc:
            return {"error": str(exc)}

    async def run(self, meta: SnapshotMeta) -> FetchOutcome:
        versions = asyncio.gather(self.version("version"), self.version("auth/version"))
        try:
            # With allow_partial, endpoint failures are caught per collection; what still
            # escapes (bad credentials) stops the others either way.
            collected = await _gather_or_cancel([self.fetch_collection(c) for c in COLLECTIONS])
            meta.provider_version, meta.auth_version = await versions
            meta.endpoints = dict(zip(COLLECTIONS, collected, strict=True))
            self.redact_meta(meta)
            incomplete = {c: s.note for c, s in meta.endpoints.items() if not s.complete}
            reason = "; ".join(f"{c}: {note}" for c, note in incomplete.items()) or None
            complete = not incomplete
            stable = all(s.stable for s in meta.endpoints.values())
            outcome = FetchOutcome(
                path=None,
                complete=complete,
                stable=stable,
                reason=reason,
                estab=self.estab,
                school_name=self.school_name,
                record_counts={c: s.records for c, s in meta.endpoints.items()},
                endpoints=meta.endpoints,
            )
            if not complete and not self.allow_partial:
                self.close(abort=True)
                return outcome
            outcome.path = await self.write(
                self.writer.finish,
                meta,
                complete=complete,
                stable=stable,
                incomplete_reason=reason,
                may_publish=None if self.interrupts is None else self.interrupts.may_publish,
            )
            self.close(abort=False)
            return outcome
        except BaseException:
            versions.cancel()  # not left running against a client about to close
            self.close(abort=True)
            raise

    def redact_meta(self, meta: SnapshotMeta) -> None:
        """Blank out any credential from what the provider said before it reaches the file or
        stderr: the client already does so where the words come in, this is the last door."""
        authenticator = self.client.authenticator
        redact = authenticator.redact
        meta.provider_version = authenticator.redact_document(meta.provider_version)
        meta.auth_version = authenticator.redact_document(meta.auth_version)
        for stats in meta.endpoints.values():
            stats.warnings = [redact(warning) for warning in stats.warnings]
            if stats.note is not None:
                stats.note = redact(stats.note)

    def close(self, *, abort: bool) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        if abort:
            self.writer.abort()


def _summarise(problems: list[str], at_most: int = 4) -> str:
    """Distinct problems as one line: the first few and the last (a server that ignores
    `offset` breaks a chain a dozen times the same way)."""
    distinct = list(dict.fromkeys(problems))
    if len(distinct) > at_most:
        skipped = len(distinct) - at_most
        distinct = [*distinct[: at_most - 1], f"... {skipped} more like these", distinct[-1]]
    return "; ".join(distinct)


def compare_reads(first: dict[str, str], second: dict[str, str]) -> list[str]:
    """Problems when two reads of a collection ({sourcedId: hash}) differ."""
    if first == second:
        return []
    added = len(second.keys() - first.keys())
    gone = len(first.keys() - second.keys())
    changed = sum(1 for k in first.keys() & second.keys() if first[k] != second[k])
    return [
        f"a second read differed ({added} new, {gone} gone, {changed} changed): "
        "the collection changed while paging"
    ]


def _as_fetch_error(exc: SnapshotDataError) -> FetchError:
    return FetchError(
        exc.collection,
        exc.problem,
        offset=exc.offset,
        hint="the provider sent records that cannot be archived as they are; report it to "
        "the provider with the offset above",
    )


async def fetch_snapshot_async(
    base_url: str,
    rp: str,
    estab: str,
    secret: str,
    archive: Path,
    *,
    school_name: str | None = None,
    drop_fields: Sequence[str] = (),
    allow_partial: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    page_size: int = DEFAULT_PAGE_SIZE,
    settings: FetchSettings | None = None,
    progress: ProgressCallback | None = None,
    interrupts: FetchInterrupts | None = None,
    allow_insecure_http: bool = False,
    clock: Callable[[], datetime] | None = None,
    source: str = "fetch",
) -> FetchOutcome:
    """Take one snapshot of a school (see `fetch_snapshot`)."""
    if interrupts is not None:
        task = asyncio.current_task()
        if task is not None:
            interrupts.attach(task)
    if settings is None:
        settings = FetchSettings(page_size=page_size, concurrency=concurrency)
    parse_drop_fields(drop_fields)  # a bad --drop-field fails before any request
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base URL {public_base_url(base_url)!r} is not an http(s) URL; "
            f"Xporter's is {PRODUCTION_BASE_URL}"
        )
    refuse_plain_http(base_url, allow_insecure_http)  # before any request
    started_at = clock() if clock is not None else datetime.now(UTC)
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    # pool=None: requests wait for a free connection as long as it takes; the semaphores in
    # _SchoolFetch already bound how many wait.
    timeout = httpx.Timeout(settings.timeout_s, pool=None)
    async with httpx.AsyncClient(
        limits=limits, timeout=timeout, follow_redirects=False, verify=True
    ) as http:
        client = OneRosterClient(
            http, base_url, TokenAuthenticator(rp, estab, secret), settings.retry_policy
        )
        # Credentials are checked before anything touches the archive.
        await client.bearer_token()
        writer = SnapshotWriter(archive, estab, started_at=started_at, drop_fields=drop_fields)
        meta = SnapshotMeta(
            estab=estab,
            source=source,
            started_at=started_at,
            school_name=school_name,
            rp=rp,
            base_url=public_base_url(base_url),
            clock=clock or utc_now,
        )
        school = _SchoolFetch(
            client,
            writer,
            estab=estab,
            school_name=school_name,
            settings=settings,
            allow_partial=allow_partial,
            progress=progress,
            interrupts=interrupts,
        )
        outcome = await school.run(meta)
    if outcome.path is not None:
        # Data-quality findings kept beside it (issue 11); a failure there is only a warning.
        from .quality.store import keep_for_new_snapshot

        await asyncio.to_thread(keep_for_new_snapshot, archive, outcome.path)
    return outcome


def fetch_snapshot(
    base_url: str,
    rp: str,
    estab: str,
    secret: str,
    archive: Path,
    *,
    school_name: str | None = None,
    drop_fields: Sequence[str] = (),
    allow_partial: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    page_size: int = DEFAULT_PAGE_SIZE,
    settings: FetchSettings | None = None,
    progress: ProgressCallback | None = None,
    interrupts: FetchInterrupts | None = None,
    allow_insecure_http: bool = False,
    clock: Callable[[], datetime] | None = None,
    source: str = "fetch",
) -> FetchOutcome:
    """Take one full snapshot of a school into `archive/<estab>/`.

    Returns the outcome (its `path` is the new snapshot file). Raises `AuthError` when the
    provider refuses the credentials and `FetchError` (naming endpoint, offset and what to do)
    when an endpoint cannot be fetched; with `allow_partial`, endpoint failures instead leave a
    snapshot marked incomplete. On any failure nothing is left in the archive. Plain
    `http://` to a host other than this machine raises `InsecureTransportError` before any
    request, unless `allow_insecure_http`. `clock` gives the times recorded (and the file's
    name); `source` the snapshot's `source` metadata.

    With `interrupts` (installed by the caller around the fetch and the printing of the path),
    Ctrl-C before the snapshot is published raises `KeyboardInterrupt` with nothing left in the
    archive; once it is published the fetch finishes and returns it.
    """
    try:
        return asyncio.run(
            fetch_snapshot_async(
                base_url,
                rp,
                estab,
                secret,
                archive,
                school_name=school_name,
                drop_fields=drop_fields,
                allow_partial=allow_partial,
                concurrency=concurrency,
                page_size=page_size,
                settings=settings,
                progress=progress,
                interrupts=interrupts,
                allow_insecure_http=allow_insecure_http,
                clock=clock,
                source=source,
            )
        )
    except (asyncio.CancelledError, PublishRefused):
        if interrupts is not None and interrupts.count:
            raise KeyboardInterrupt from None
        raise


@dataclass(frozen=True)
class SchoolTarget:
    """One school to fetch in a batch (`snapshotter fetch --all`)."""

    name: str
    rp: str
    estab: str
    secret: str | None  # None: its secret could not be found (the school fails alone)
    base_url: str = PRODUCTION_BASE_URL
    drop_fields: tuple[str, ...] = ()
    missing_secret_reason: str | None = None
    allow_insecure_http: bool = False


@dataclass(frozen=True)
class SchoolResult:
    target: SchoolTarget
    outcome: FetchOutcome | None
    error: Exception | None


async def fetch_schools_async(
    targets: Sequence[SchoolTarget],
    archive: Path,
    *,
    allow_partial: bool = False,
    settings: FetchSettings | None = None,
    progress: ProgressCallback | None = None,
) -> list[SchoolResult]:
    """Fetch several schools concurrently; one school's failure never stops another."""

    async def one(target: SchoolTarget) -> SchoolResult:
        if target.secret is None:
            reason = target.missing_secret_reason or "no secret"
            return SchoolResult(target, None, AuthError(reason))
        try:
            outcome = await fetch_snapshot_async(
                target.base_url,
                target.rp,
                target.estab,
                target.secret,
                archive,
                school_name=target.name,
                drop_fields=target.drop_fields,
                allow_partial=allow_partial,
                settings=settings,
                progress=progress,
                allow_insecure_http=target.allow_insecure_http,
            )
        except (ApiError, SnapshotDataError, ArchiveError, OSError, ValueError) as exc:
            return SchoolResult(target, None, exc)
        return SchoolResult(target, outcome, None)

    return list(await asyncio.gather(*(one(t) for t in targets)))


def fetch_schools(
    targets: Sequence[SchoolTarget],
    archive: Path,
    *,
    allow_partial: bool = False,
    settings: FetchSettings | None = None,
    progress: ProgressCallback | None = None,
) -> list[SchoolResult]:
    return asyncio.run(
        fetch_schools_async(
            targets, archive, allow_partial=allow_partial, settings=settings, progress=progress
        )
    )


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PAGE_SIZE",
    "AuthError",
    "EndpointProgress",
    "FetchError",
    "FetchOutcome",
    "FetchSettings",
    "InsecureTransportError",
    "SchoolResult",
    "SchoolTarget",
    "fetch_schools",
    "fetch_snapshot",
    "fetch_snapshot_async",
    "refuse_plain_http",
]
