"""Whether a host names this machine: where plain HTTP (the fetch) and an unauthenticated site
(`snapshotter serve`) are allowed. Standard library only: the CLI asks before anything heavy."""

from __future__ import annotations

import ipaddress

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (also as ::ffff:127.0.0.1); any other name may
    resolve to a public address."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)
