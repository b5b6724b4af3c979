"""The simulator can make `sort` cost server time, as an unindexed ORDER BY does, and counts
the server time each request used; its own order is the stable order records were created in."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner
from test_sim_server import Api, ids

from snapshotter.cli import cli
from snapshotter.sim.quirks import Quirks


def _state(sim) -> dict:  # noqa: ANN001
    return httpx.get(f"{sim.root_url}/_sim/state").json()


def test_a_sorted_request_holds_the_server_for_the_stated_time_per_thousand_records(sim_server):
    sim = sim_server(pupils=100, quirks=Quirks(sort_cost_ms_per_1000=2.0))
    api = Api(sim)
    enrollments = len(sim.records("enrollments"))
    api.records("/enrollments?limit=10&offset=0")
    assert _state(sim)["sort_time_s"] == 0
    api.records("/enrollments?limit=10&offset=0&sort=sourcedId")
    api.records("/enrollments?limit=10&offset=10&sort=sourcedId&orderBy=asc")
    expected_s = 2 * 2.0 * enrollments / 1000 / 1000
    state = _state(sim)
    assert state["sort_time_s"] == pytest.approx(expected_s)
    # The time is really spent holding the server, and counted in its server time.
    assert state["server_time_s"] >= expected_s


def test_a_sort_the_server_does_not_perform_costs_nothing(sim_server):
    for quirks in (
        Quirks(sort_cost_ms_per_1000=2.0, ignore_sort=True),
        Quirks(sort_cost_ms_per_1000=2.0, reject_sort=True),
        Quirks(sort_cost_ms_per_1000=2.0, shuffle_order=True),
    ):
        sim = sim_server(pupils=60, quirks=quirks)
        Api(sim).get("/users?limit=10&offset=0&sort=shoeSize")  # unknown field: default order
        Api(sim).get("/users?limit=10&offset=0")
        if not quirks.ignore_sort and not quirks.reject_sort:
            Api(sim).get("/users?limit=10&offset=0&sort=familyName")
        assert _state(sim)["sort_time_s"] == pytest.approx(
            0 if quirks.ignore_sort or quirks.reject_sort else 2.0 * len(sim.records("users")) / 1e6
        )


def test_the_state_counts_requests_and_server_time(sim_server):
    sim = sim_server(pupils=60)
    before = _state(sim)
    Api(sim).records("/users?limit=10&offset=0")  # a token request and a page
    after = _state(sim)
    # The state request that read `before` is logged once it is answered: 3 in all.
    assert after["requests"] - before["requests"] == 3
    assert after["server_time_s"] > before["server_time_s"]


def test_the_default_order_is_creation_order_and_the_same_on_every_request(sim_server):
    sim = sim_server(pupils=60, quirks=Quirks(sort_cost_ms_per_1000=1.0))
    api = Api(sim)
    created = ids(sim.records("users"))
    paged = [
        ids(api.records(f"/users?limit=25&offset={offset}"))
        for offset in range(0, len(created), 25)
    ]
    assert [i for page in paged for i in page] == created
    assert ids(api.records("/users")) == created
    assert created != sorted(created)  # not secretly sorted: the fetch cannot lean on it


def test_sim_serve_offers_the_sort_cost_switch():
    result = CliRunner().invoke(cli, ["sim", "serve", "--help"])
    assert result.exit_code == 0 and "--sort-cost-ms-per-1000" in result.output
