"""Offset paging that proves it missed nothing, against servers that change while we read.

Each page is requested so that it overlaps the one before by one record: the page after a page
of `n` records at offset `o` starts at `o + n - 1`, and must begin with the record the previous
page ended with. While that holds at every boundary, the pages form one unbroken run of the
collection, so every record that existed for the whole fetch was seen; a record removed (or
inserted) ahead of a boundary between two reads shifts the positions and breaks the chain
there, which is exactly the case where plain offset paging skips a record without a trace.

The run ends with a page holding nothing but the overlap record (or an empty page when the
collection is empty): never at "a page shorter than I asked for", which a server capping
`limit` produces on every page.

With `X-Total-Count` known up front, every offset can be planned from the first page (assuming
the server keeps returning as many records as it did then) and fetched concurrently; any page
that came back shorter leaves a hole in the chain that `next_offset` asks for.

This module is plain bookkeeping over page summaries: no HTTP, no records kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A pass whose chain broke this often is abandoned: it will be fetched again anyway, and a
# server that ignores `offset` would otherwise be paged for ever.
MAX_BREAKS = 10


def _ascending(ids: list[str]) -> bool:
    # Servers sort by their database's collation: ordinal or case-insensitive are both fine.
    return all(a < b for a, b in zip(ids, ids[1:], strict=False)) or all(
        a.casefold() <= b.casefold() for a, b in zip(ids, ids[1:], strict=False)
    )


@dataclass(frozen=True)
class PageSummary:
    """What the chain needs to know about one page: where it was and how it began and ended."""

    offset: int
    count: int
    first_id: str | None
    last_id: str | None
    ascending: bool  # ids in the page ascend (the server honoured sort=sourcedId)

    @classmethod
    def of(cls, offset: int, records: list[Any]) -> PageSummary:
        ids = [r.get("sourcedId") if isinstance(r, dict) else None for r in records]
        text_ids = [i for i in ids if isinstance(i, str)]
        return cls(
            offset=offset,
            count=len(records),
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
            ascending=len(text_ids) == len(ids) and _ascending(text_ids),
        )

    @property
    def next_offset(self) -> int:
        """Where the following page starts: overlapping by one record when there is one to
        overlap (a one-record page cannot overlap without asking for itself again)."""
        return self.offset + self.count - 1 if self.count >= 2 else self.offset + self.count


def planned_offsets(first: PageSummary, total: int | None) -> list[int]:
    """The offsets to fetch concurrently after the first page, when the total is known."""
    if total is None or first.count < 2:
        return []  # unknown total, empty collection, or one-record pages: walk the chain
    step = first.count - 1
    offsets = set(range(step, total - 1, step))
    if total >= 2:
        offsets.add(total - 1)  # the page that should hold only the last record: the end
    return sorted(offsets)


@dataclass
class PageChain:
    """The pages of one pass over a collection, and whether they join up."""

    pages: dict[int, PageSummary] = field(default_factory=dict)
    breaks: list[str] = field(default_factory=list)
    ended: bool = False
    _walked_to: int = 0  # offset of the last page the walk has verified
    _walk_started: bool = False

    def add(self, page: PageSummary) -> None:
        # A page asked for twice (a fill that raced a planned fetch) keeps its first answer.
        self.pages.setdefault(page.offset, page)

    @property
    def ordered(self) -> bool:
        """Every page ascended by sourcedId and so did the boundaries: the server sorted."""
        return all(p.ascending for p in self.pages.values())

    def next_offset(self) -> int | None:
        """Walk the chain from offset 0 as far as the pages go. Returns the offset of the page
        needed next, or None when the chain has reached its end (see `ended` and `breaks`)."""
        if self.ended:
            return None
        if not self._walk_started:
            if 0 not in self.pages:
                return 0
            self._walk_started = True
            if self.pages[0].count == 0:
                self.ended = True
                return None
        current = self.pages[self._walked_to]
        while True:
            following_offset = current.next_offset
            following = self.pages.get(following_offset)
            if following is None:
                return following_offset
            overlapping = current.count >= 2
            if overlapping and following.count == 0:
                self.breaks.append(
                    f"the collection shrank while paging: nothing at offset {following_offset}, "
                    f"where record {current.last_id!r} was moments before"
                )
                self.ended = True
                return None
            if overlapping and following.first_id != current.last_id:
                self.breaks.append(
                    f"records moved while paging: the page at offset {following_offset} begins "
                    f"with {following.first_id!r}, not {current.last_id!r} as the page before "
                    "ended"
                )
                if len(self.breaks) >= MAX_BREAKS:
                    self.breaks.append("gave up this pass (does the server ignore `offset`?)")
                    self.ended = True
                    return None
            if following.count == 0 or (overlapping and following.count == 1):
                self._walked_to = following_offset
                self.ended = True
                return None
            self._walked_to = following_offset
            current = following

    @property
    def stable(self) -> bool:
        return self.ended and not self.breaks
