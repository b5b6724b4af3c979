"""Paging that survives real servers: caps, missing totals, 204s, ignored sort, drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_fetch import assert_complete_and_exact, fetch, metadata, stored, tree

from snapshotter.fetch import FetchSettings
from snapshotter.sim.quirks import Quirks


def test_a_fault_free_fetch_holds_exactly_what_the_server_holds(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    assert metadata(outcome.path)["stable"] == 1


@pytest.mark.parametrize(
    "quirks",
    [
        Quirks(max_page_size=7),
        Quirks(no_total_count=True),
        Quirks(empty_page_204=True, no_total_count=True),
        Quirks(ignore_sort=True),
        Quirks(ignore_sort=True, no_total_count=True, max_page_size=9),
        Quirks(shuffle_order=True),
    ],
    ids=[
        "a capped page size",
        "no X-Total-Count",
        "204 for an empty page",
        "sort ignored",
        "sort ignored, no total and a cap",
        "unsorted default order (sort honoured)",
    ],
)
def test_a_server_quirk_does_not_change_what_the_snapshot_holds(
    sim_server, tmp_path: Path, quirks: Quirks
):
    sim = sim_server(pupils=60, quirks=quirks)
    assert_complete_and_exact(fetch(sim, tmp_path), sim)


def test_a_capped_page_size_does_not_end_the_fetch_early(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(max_page_size=7, no_total_count=True))
    outcome = fetch(sim, tmp_path, settings=FetchSettings(page_size=100, concurrency=2))
    assert outcome.record_counts["enrollments"] == len(sim.records("enrollments")) > 100


def test_booleans_as_strings_and_inactive_make_the_same_content_hash(sim_server, tmp_path: Path):
    plain = fetch(sim_server(pupils=60), tmp_path / "a")
    quirky = fetch(
        sim_server(pupils=60, quirks=Quirks(booleans_as_strings=True, inactive_status=True)),
        tmp_path / "b",
    )
    assert metadata(quirky.path)["content_hash"] == metadata(plain.path)["content_hash"]


@pytest.mark.parametrize(
    "insert,remove",
    [(2, 0), (0, 2), (1, 1)],
    ids=["records inserted", "records removed", "as many inserted as removed"],
)
def test_records_changing_while_paging_are_fetched_again_until_stable(
    sim_server, tmp_path: Path, insert: int, remove: int
):
    quirks = Quirks(
        drift_endpoint="enrollments",
        drift_insert_per_page=insert,
        drift_remove_per_page=remove,
        drift_pages=3,
    )
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    # Exact against the server as it is after the drift: nothing skipped, nothing stale.
    assert_complete_and_exact(outcome, sim)
    assert outcome.endpoints["enrollments"].attempts >= 2


def test_a_collection_growing_at_its_end_without_a_total_is_fetched_again_not_paged_for_ever(
    sim_server, tmp_path: Path
):
    # New records land past a page that came back empty earlier in the pass, so the chain
    # needs a page beyond that "end": the pass is unstable (it used to loop asking for it).
    quirks = Quirks(
        no_total_count=True,
        ignore_sort=True,
        drift_endpoint="enrollments",
        drift_insert_per_page=5,
        drift_pages=40,
        drift_at_end=True,
    )
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    assert outcome.endpoints["enrollments"].attempts >= 2


def test_a_collection_that_never_settles_is_not_kept_and_the_reason_names_it(
    sim_server, tmp_path: Path
):
    quirks = Quirks(drift_endpoint="users", drift_insert_per_page=1, drift_remove_per_page=1)
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert outcome.path is None and not outcome.complete
    assert "users" in outcome.reason and "3 attempt" in outcome.reason
    # Nor does one answer holding the whole collection help, when records seen while paging
    # are missing from it (a cap the total did not reveal cannot be told from a removal).
    assert "records seen while paging are not in it" in outcome.reason
    assert tree(tmp_path) == {}


def test_allow_partial_keeps_an_unsettled_snapshot_marked_incomplete(sim_server, tmp_path: Path):
    quirks = Quirks(drift_endpoint="users", drift_remove_per_page=1)
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path, allow_partial=True)
    assert outcome.path is not None and not outcome.complete and not outcome.stable
    row = metadata(outcome.path)
    assert (row["complete"], row["stable"]) == (0, 0)
    assert "users" in row["incomplete_reason"]


def _whole_reads(sim, collection: str) -> list[str]:  # noqa: ANN001
    """Requests for a whole collection in one answer: no query at all."""
    return [path for _, path, _ in sim.request_log if path.endswith(f"/{collection}")]


@pytest.mark.parametrize(
    "quirks",
    [Quirks(shuffle_order=True, ignore_sort=True), Quirks(ignore_offset=True)],
    ids=["shuffled on every request, sort ignored", "offset ignored"],
)
def test_a_collection_that_cannot_be_paged_is_read_whole_and_checked_against_the_total(
    sim_server, tmp_path: Path, quirks: Quirks
):
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    enrollments = outcome.endpoints["enrollments"]
    assert enrollments.attempts == 3 and "read whole in one request" in enrollments.note
    assert len(_whole_reads(sim, "enrollments")) == 1


@pytest.mark.parametrize(
    "quirks,why",
    [
        (
            Quirks(shuffle_order=True, ignore_sort=True, max_page_size=50),
            "it held 50 records but X-Total-Count says 725",
        ),
        (
            Quirks(shuffle_order=True, ignore_sort=True, no_total_count=True),
            "no X-Total-Count came with it",
        ),
    ],
    ids=["the whole read capped", "no X-Total-Count to check it against"],
)
def test_a_whole_read_that_cannot_be_verified_gives_no_complete_snapshot(
    sim_server, tmp_path: Path, quirks: Quirks, why: str
):
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert not outcome.complete and outcome.path is None
    assert "enrollments" in outcome.reason and why in outcome.reason
    assert tree(tmp_path) == {}


def test_a_server_that_refuses_sort_with_a_400_is_read_in_its_own_order(sim_server, tmp_path: Path):
    # `sort` is asked for only once the server's own order has failed a pass, so a server
    # whose order holds is never asked and never refuses. (Asked, refused once and read in
    # its own order after all: test_fetch_order.py.)
    sim = sim_server(pupils=60, quirks=Quirks(reject_sort=True))
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    assert outcome.endpoints["users"].attempts == 1
    assert not any("sort=sourcedId refused" in w for w in outcome.endpoints["users"].warnings)
    assert not [p for _, p, status in sim.request_log if status == 400]


def test_duplicates_from_offset_drift_are_stored_once(sim_server, tmp_path: Path):
    quirks = Quirks(drift_endpoint="enrollments", drift_insert_per_page=3, drift_pages=2)
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    ids = stored(outcome.path)["enrollments"]
    assert len(ids) == outcome.record_counts["enrollments"] == len(sim.records("enrollments"))
