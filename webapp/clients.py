"""Who a limit counts: the client's address, as rate limits and the login back-off see it.

An IPv4 address is one client (or one household behind its router). An IPv6 client is
given a whole /64 network by its provider and may use any of its 2^64 addresses, so a
limit counted per address would be no limit at all: IPv6 addresses count by their /64.
"""

from __future__ import annotations

import ipaddress

from flask_limiter.util import get_remote_address

#: The prefix every IPv6 subscriber is given at the least (RFC 6177): one client.
IPV6_CLIENT_PREFIX = 64


def client_key() -> str:
    """The request's client for counting: its IPv4 address (also when written as an
    IPv4-mapped IPv6 one), or its IPv6 /64 network."""
    address = get_remote_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # no address (a test client, a Unix socket): counted as it is
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network((ip, IPV6_CLIENT_PREFIX), strict=False))
