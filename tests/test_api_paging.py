"""The page chain alone: overlapping pages prove nothing was skipped, or say where it broke."""

from __future__ import annotations

from snapshotter.api.paging import PageChain, PageSummary, planned_offsets


def _pages(sequence: list[str], size: int, offsets: list[int]) -> list[PageSummary]:
    return [PageSummary.of(o, [{"sourcedId": i} for i in sequence[o : o + size]]) for o in offsets]


IDS = [f"x{n:03d}" for n in range(10)]


def test_with_a_total_every_offset_is_planned_from_the_first_page() -> None:
    first = PageSummary.of(0, [{"sourcedId": i} for i in IDS[:4]])
    # Pages of 4 overlapping by one: 0-3, 3-6, 6-9, and the end page holding only record 9.
    assert planned_offsets(first, total=10) == [3, 6, 9]
    assert planned_offsets(first, total=None) == []


def test_pages_that_join_up_reach_the_end_without_breaks() -> None:
    chain = PageChain()
    for page in _pages(IDS, 4, [0, 3, 6, 9]):
        chain.add(page)
    assert chain.next_offset() is None
    assert chain.stable and chain.ordered


def test_a_capped_short_page_asks_for_the_next_offset_instead_of_ending() -> None:
    chain = PageChain()
    chain.add(_pages(IDS, 3, [0])[0])  # asked for more, the server capped at 3
    assert chain.next_offset() == 2
    chain.add(_pages(IDS, 3, [2])[0])
    assert chain.next_offset() == 4


def test_a_record_removed_behind_the_cursor_breaks_the_chain() -> None:
    chain = PageChain()
    chain.add(_pages(IDS, 4, [0])[0])
    shifted = [i for i in IDS if i != "x001"]  # removed after the first page was read
    chain.add(_pages(shifted, 4, [3])[0])  # starts at x004, so x003 was skipped
    chain.add(_pages(shifted, 4, [6])[0])
    chain.add(_pages(shifted, 4, [8])[0])
    assert chain.next_offset() is None
    assert not chain.stable
    assert "begins with 'x004', not 'x003'" in chain.breaks[0]


def test_an_empty_page_where_a_record_was_is_a_shrink() -> None:
    chain = PageChain()
    chain.add(_pages(IDS, 10, [0])[0])
    chain.add(PageSummary.of(9, []))
    assert chain.next_offset() is None and not chain.stable
    assert "shrank" in chain.breaks[0]


def test_an_empty_collection_is_one_empty_page() -> None:
    chain = PageChain()
    chain.add(PageSummary.of(0, []))
    assert chain.next_offset() is None and chain.stable


def test_a_server_that_ignores_offset_is_given_up_on() -> None:
    chain = PageChain()
    same = [{"sourcedId": i} for i in IDS[:4]]
    offset = 0
    for _ in range(100):
        chain.add(PageSummary.of(offset, same))
        following = chain.next_offset()
        if following is None:
            break
        offset = following
    assert not chain.stable and "ignore `offset`" in chain.breaks[-1]


def test_case_insensitive_server_sorting_still_counts_as_sorted() -> None:
    page = PageSummary.of(0, [{"sourcedId": i} for i in ["xa1", "xB2", "xc3"]])
    assert page.ascending
    assert not PageSummary.of(0, [{"sourcedId": i} for i in ["x3", "x1"]]).ascending
