"""The HTTP client's safety: the token never goes to another host, TLS is always verified,
and Retry-After is honoured. Each against a real server on the loopback interface."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from helpers_fetch import ESTAB, FAST, RP, SECRET, tree

from snapshotter.api.auth import TokenAuthenticator, basic_authorization
from snapshotter.api.client import OneRosterClient, RequestCounter
from snapshotter.api.errors import AuthError, FetchError
from snapshotter.api.retry import RetryPolicy
from snapshotter.fetch import fetch_snapshot
from snapshotter.sim.quirks import PageFault, Quirks
from snapshotter.sim.server import API_PREFIX, SimState, bind_socket, create_app


class _Served:
    """An ASGI app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: Any, **ssl: Any) -> None:
        self.socket = bind_socket()
        host, port = self.socket.getsockname()[:2]
        scheme = "https" if ssl else "http"
        self.root_url = f"{scheme}://{host}:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", **ssl)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> _Served:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server did not start")
            threading.Event().wait(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def _elsewhere_app(seen: list[dict[str, str]]) -> Any:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"users": []}'})

    return app


def _redirecting_app(target_root: str) -> Any:
    """Issues tokens like the provider, then redirects every data request to another host."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["path"].endswith("/auth/token"):
            body = b'{"access_token": "tok-123", "token_type": "Bearer", "expires_in": 3600}'
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        location = (target_root + scope["path"]).encode()
        headers = [(b"location", location)]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return app


def test_a_redirect_to_another_host_is_not_followed_and_gets_no_token(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    with _Served(_elsewhere_app(seen)) as elsewhere:
        provider = _Served(_redirecting_app(elsewhere.root_url))
        with provider, pytest.raises(FetchError) as caught:
            fetch_snapshot(
                provider.root_url + API_PREFIX, RP, ESTAB, SECRET, tmp_path, settings=FAST
            )
    assert "redirected (HTTP 302)" in str(caught.value) and "another host" in str(caught.value)
    assert seen == []  # the other host was never even asked
    assert tree(tmp_path) == {}


def _echoing_app(refuse_token: bool) -> Any:
    """Refuses the credentials (or issues a token, then refuses it on every request), echoing
    back what it was sent, as some servers' error descriptions do. The simulator never echoes
    credentials, so this is a raw server of its own."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        sent = {k.decode(): v.decode() for k, v in scope["headers"]}.get("authorization", "")
        if sent.startswith("Basic "):
            sent += " = " + base64.b64decode(sent.split()[1]).decode()
        if scope["path"].endswith("/auth/token") and not refuse_token:
            body: dict[str, Any] = {"access_token": "tok-echoed-123456", "expires_in": 3600}
            status = 200
        elif scope["path"].endswith("/auth/token"):
            body = {"error": "invalid_client", "error_description": f"{sent} is not known"}
            status = 401
        else:
            body = {"imsx_codeMajor": "failure", "imsx_description": f"{sent} is not valid"}
            status = 401
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


@pytest.mark.parametrize(
    "refuse_token,words",
    [(False, "refused a freshly issued token"), (True, "refused the credentials")],
    ids=["the bearer token echoed by a data endpoint", "the secret echoed by the token endpoint"],
)
def test_credentials_the_provider_echoes_back_never_reach_the_message(
    tmp_path: Path, refuse_token: bool, words: str
) -> None:
    with _Served(_echoing_app(refuse_token)) as provider, pytest.raises(AuthError) as caught:
        fetch_snapshot(provider.root_url + API_PREFIX, RP, ESTAB, SECRET, tmp_path, settings=FAST)
    message = str(caught.value)
    assert words in message and "[redacted]" in message
    for secret in ("tok-echoed-123456", SECRET, basic_authorization(RP, ESTAB, SECRET)[6:]):
        assert secret not in message
    assert tree(tmp_path) == {}


def _corrupt_gzip_app() -> Any:
    """Issues tokens, then answers every data request with a body that claims gzip but is not
    (a broken proxy); the simulator always answers plainly, so this is a raw server."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["path"].endswith("/auth/token"):
            headers, body = [], b'{"access_token": "tok-123456", "expires_in": 3600}'
        else:
            headers = [(b"content-encoding", b"gzip")]
            body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 40
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def test_an_answer_that_cannot_be_decompressed_is_retried_then_fails_clearly(
    tmp_path: Path,
) -> None:
    with _Served(_corrupt_gzip_app()) as provider, pytest.raises(FetchError) as caught:
        fetch_snapshot(provider.root_url + API_PREFIX, RP, ESTAB, SECRET, tmp_path, settings=FAST)
    message = str(caught.value)
    assert " at offset 0: gave up after 6 attempts: the answer could not be decoded" in message
    assert tree(tmp_path) == {}


def test_a_base_url_that_is_not_http_fails_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an http\\(s\\) URL"):
        fetch_snapshot("xporter.groupcall.com/api", RP, ESTAB, SECRET, tmp_path, settings=FAST)
    assert tree(tmp_path) == {}


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[dict[str, str]]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    yield {"ssl_keyfile": str(key), "ssl_certfile": str(cert)}


def test_tls_verification_stays_on_and_fails_clearly(self_signed, tmp_path: Path) -> None:
    state = SimState(pupils=60)
    provider = _Served(create_app(state), **self_signed)
    with provider, pytest.raises(FetchError) as caught:
        fetch_snapshot(
            provider.root_url + API_PREFIX, RP, ESTAB, SECRET, tmp_path / "a", settings=FAST
        )
    assert str(caught.value).startswith("token")
    assert "certificate could not be verified" in str(caught.value)
    assert state.request_log == []  # nothing, not even the token request, got through
    assert tree(tmp_path / "a") == {}


def test_retry_after_is_honoured_before_the_next_attempt(sim_server) -> None:
    quirks = Quirks(faults=(PageFault("users", "429", times=2),), retry_after_s=0.25)
    sim = sim_server(pupils=60, quirks=quirks)
    waits: list[float] = []

    async def record_and_skip(seconds: float) -> None:
        waits.append(seconds)

    async def get_first_page() -> int:
        policy = RetryPolicy(base_delay_s=0.001)
        async with httpx.AsyncClient() as http:
            client = OneRosterClient(
                http, sim.base_url, TokenAuthenticator(RP, ESTAB, SECRET), policy,
                sleep=record_and_skip,
            )  # fmt: skip
            page = await client.get_page("users", offset=0, limit=10, counter=RequestCounter())
            return len(page.records)

    assert asyncio.run(get_first_page()) == 10
    assert waits == [0.25, 0.25]
