"""The Datasette instance `snapshotter serve` runs: this package's plugin and metadata over an
archive, locked down, served by uvicorn on a loopback address.

Locked down: no arbitrary SQL (the metadata's `allow_sql: false`, and the setting), no download
of a database file, no CSV of a whole table streamed, robots.txt disallowing everything.
`changes.db` opens read-only, snapshot files immutable, each when a page first asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import webbrowser
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.plugins import pm
from datasette.utils import parse_metadata

from . import plugin
from .accounts import AUTH_PLUGIN, Account, auth_plugin_config


class ServeError(Exception):
    """The site could not start; the message says why and what to do."""


LOCKED_DOWN_SETTINGS: dict[str, Any] = {
    "default_allow_sql": False,
    "allow_download": False,
    "allow_csv_stream": False,
}


def load_metadata() -> dict[str, Any]:
    """The package's `metadata.yml` (the top-level `metadata.yml` of a checkout links to it)."""
    text = (resources.files("snapshotter.datasette") / "metadata.yml").read_text(encoding="utf-8")
    return parse_metadata(text)


def register_plugin() -> None:
    """The hooks are registered here, not through an entry point, so that installing
    snapshotter does not put its pages into every other Datasette site of the machine."""
    if not pm.is_registered(plugin):
        pm.register(plugin, name="snapshotter")


def _register_login_form() -> None:
    """datasette-auth-passwords, which an install registers through its entry point, registered
    here too: the login form must be there even where Datasette loads no entry points."""
    import datasette_auth_passwords

    if not pm.is_registered(datasette_auth_passwords):
        pm.register(datasette_auth_passwords, name=AUTH_PLUGIN)


def make_datasette(archive: Path, accounts: Sequence[Account] = ()) -> Datasette:
    """A Datasette over `archive` with the plugin, the metadata and the locked-down settings;
    with `accounts`, every page needs one of them signed in (datasette-auth-passwords' form)."""
    register_plugin()
    metadata = copy.deepcopy(load_metadata())
    metadata.setdefault("plugins", {})[plugin.PLUGIN] = {"archive": str(archive.resolve())}
    if accounts:
        _register_login_form()
        metadata["plugins"][AUTH_PLUGIN] = auth_plugin_config(accounts)
    datasette = Datasette(metadata=metadata, settings=dict(LOCKED_DOWN_SETTINGS))
    # changes.db now if there is one; else the plugin attaches it once a diff has saved it.
    plugin.attach(datasette, plugin.CHANGES)
    return datasette


def serve(
    archive: Path,
    host: str,
    port: int,
    *,
    open_browser: bool = False,
    announce: Callable[[str], None] = print,
    accounts: Sequence[Account] = (),
) -> None:
    """Serve the archive until interrupted; `announce` gets the URL once the port listens."""
    import uvicorn

    datasette = make_datasette(archive, accounts)

    async def run() -> None:
        await datasette.invoke_startup()
        config = uvicorn.Config(
            datasette.app(), host=host, port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if not server.started:
            with contextlib.suppress(BaseException):  # uvicorn logged why and exits
                await serving
            raise ServeError(
                f"cannot listen on {host} port {port}: the port is in use, or the address is "
                "not this machine's; try another --port"
            )
        if server.started:
            shown_host = f"[{host}]" if ":" in host else host
            url = f"http://{shown_host}:{port}/"
            announce(url)
            if open_browser:
                webbrowser.open(url)
        await serving

    # uvicorn stops on Ctrl-C, then raises it again for its caller: stopping is the way out.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
