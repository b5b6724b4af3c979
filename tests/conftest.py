"""Shared fixtures: a factory for simulated Xporter servers on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from snapshotter.sim.quirks import Quirks
from snapshotter.sim.server import SimServer

SimServerFactory = Callable[..., SimServer]


@pytest.fixture
def sim_server() -> Iterator[SimServerFactory]:
    """Start simulated servers: `sim = sim_server(pupils=100, term=0, quirks=Quirks(...))`.

    Each is a real uvicorn server on 127.0.0.1 with a free port, stopped at teardown. The
    school for a (seed, pupils, term) is generated once per test session and shared.
    """
    started: list[SimServer] = []

    def start(
        pupils: int = 100,
        term: int = 0,
        seed: int = 1,
        quirks: Quirks | None = None,
        clients: dict[str, str] | None = None,
        plant_problems: bool = False,
    ) -> SimServer:
        server = SimServer(
            pupils=pupils,
            term=term,
            seed=seed,
            quirks=quirks,
            clients=clients,
            plant_problems=plant_problems,
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
