"""The fetch reads in the server's own order and asks for `sort` only when that order fails.

An unindexed sort costs a provider server time on every page; the page chain and the totals
prove a collection complete without it. So `sort=sourcedId` is asked for only after a pass in
the server's order did not hold, and the snapshot says per collection which order it was read
in and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers_fetch import assert_complete_and_exact, fetch, metadata

from snapshotter.model import COLLECTIONS
from snapshotter.sim.quirks import Quirks


def _page_requests(sim: Any, collection: str) -> list[str]:
    """Paged requests of one collection, in the order the server answered them."""
    return [path for _, path, _ in sim.request_log if f"/{collection}?" in path]


def _orders(outcome: Any) -> dict[str, dict[str, Any]]:
    endpoints = json.loads(metadata(outcome.path)["endpoints"])
    return {c: {"order": e["order"], "why": e["order_reason"]} for c, e in endpoints.items()}


@pytest.mark.parametrize(
    "quirks",
    [
        Quirks(),
        Quirks(max_page_size=7),
        Quirks(empty_page_204=True),
        Quirks(sort_cost_ms_per_1000=0.5),
    ],
    ids=["plain", "a capped page size", "204 for an empty page", "costly sort"],
)
def test_a_server_whose_own_order_holds_is_never_asked_to_sort(
    sim_server, tmp_path: Path, quirks: Quirks
):
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    asked = [path for c in COLLECTIONS for path in _page_requests(sim, c)]
    assert asked and not [path for path in asked if "sort=" in path or "orderBy=" in path]
    assert sim.state.sort_time_s == 0
    for collection, order in _orders(outcome).items():
        assert order["order"] == "server", collection
        assert "its own order held" in order["why"]


def test_a_server_that_reshuffles_every_answer_is_asked_to_sort_after_its_order_fails(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60, quirks=Quirks(shuffle_order=True))
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    enrollments = outcome.endpoints["enrollments"]
    assert enrollments.attempts == 2
    asked = _page_requests(sim, "enrollments")
    unsorted = [path for path in asked if "sort=" not in path]
    sorted_ = [path for path in asked if "sort=sourcedId" in path]
    assert unsorted and sorted_ and asked.index(sorted_[0]) > asked.index(unsorted[-1])
    # A failed pass counts as change, whatever failed: the sorted pass is read twice.
    assert len(sorted_) == 2 * len(set(sorted_)) == enrollments.pages - len(unsorted)
    order = _orders(outcome)["enrollments"]
    assert order["order"] == "sorted"
    assert "asked from attempt 2" in order["why"] and "records moved while paging" in order["why"]


def test_records_changing_under_the_server_order_are_read_sorted_and_twice(
    sim_server, tmp_path: Path
):
    quirks = Quirks(
        drift_endpoint="enrollments",
        drift_insert_per_page=1,
        drift_remove_per_page=1,
        drift_pages=3,
    )
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    sorted_ = [path for path in _page_requests(sim, "enrollments") if "sort=sourcedId" in path]
    # Seen changing (a record read in the first pass is gone): the sorted pass is confirmed by
    # a second read, as every collection seen changing must be.
    assert len(sorted_) > len(set(sorted_))
    order = _orders(outcome)["enrollments"]
    assert order["order"] == "sorted"
    # Replaced at the front of the server's order, after page one was read: no boundary moved
    # and the total held, so only reading that span again at the end of the pass shows it.
    assert "the first page changed while paging" in order["why"]


def test_a_server_that_cannot_be_paged_in_any_order_is_recorded_as_read_whole(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60, quirks=Quirks(shuffle_order=True, ignore_sort=True))
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    order = _orders(outcome)["enrollments"]
    assert order["order"] == "whole" and "one request" in order["why"]


def test_a_server_that_ignores_sort_is_recorded_as_read_in_its_own_order(
    sim_server, tmp_path: Path
):
    quirks = Quirks(
        ignore_sort=True, drift_endpoint="enrollments", drift_insert_per_page=2, drift_pages=2
    )
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    order = _orders(outcome)["enrollments"]
    assert order["order"] == "server" and "the server ignored it" in order["why"]


def test_a_server_that_refuses_sort_is_asked_once_its_order_fails_and_read_in_its_own_order(
    sim_server, tmp_path: Path
):
    quirks = Quirks(
        reject_sort=True, drift_endpoint="users", drift_insert_per_page=1, drift_pages=2
    )
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    users = outcome.endpoints["users"]
    assert users.attempts == 2
    assert any("sort=sourcedId refused" in w for w in users.warnings)
    refused = [p for _, p, status in sim.request_log if "/users?" in p and status == 400]
    assert len(refused) == 1  # refused once, then never asked again
    order = _orders(outcome)["users"]
    assert order["order"] == "server" and "refused" in order["why"]
    # The other collections held in the server's order and were never asked.
    assert not [p for _, p, status in sim.request_log if status == 400 and "/users?" not in p]


@pytest.mark.parametrize(
    "quirks",
    [Quirks(no_total_count=True), Quirks(no_total_count=True, empty_page_204=True)],
    ids=["no X-Total-Count", "204 and no total"],
)
def test_a_server_without_totals_is_read_sorted_from_its_first_page(
    sim_server, tmp_path: Path, quirks: Quirks
):
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    asked = _page_requests(sim, "enrollments")
    # Page one in the server's own order shows there is no total; from then on, sorted.
    assert "sort=" not in asked[0] and all("sort=sourcedId" in path for path in asked[1:])
    order = _orders(outcome)["enrollments"]
    assert order["order"] == "sorted" and "no X-Total-Count" in order["why"]


@pytest.mark.parametrize("total", [True, False], ids=["with X-Total-Count", "without"])
def test_an_order_with_ties_loses_no_record(sim_server, tmp_path: Path, total: bool):
    # An ORDER BY on a non-unique column: tied records trade places with the offset asked, so
    # one is never served, while the pages still chain and read the same every time. With a
    # total the count shows it; without one only a sorted read can be trusted.
    sim = sim_server(pupils=60, quirks=Quirks(tied_order=True, no_total_count=not total))
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    assert _orders(outcome)["enrollments"]["order"] == "sorted"
