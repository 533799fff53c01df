"""Where a download may connect, and until when: the rules the transport enforces.

An address is allowed when it is on the public internet (`address_is_public`), or when
the config allows private addresses or names its network. `DEADLINE` is the moment the
download running in this thread must be over; every connect, read and write is cut
short by it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from contextvars import ContextVar

# When the download running in this thread must be over (time.monotonic()), if any.
DEADLINE: ContextVar[float | None] = ContextVar("download_deadline", default=None)


class RefusedAddress(Exception):
    """A connection the rules forbid: the address is not on the public internet."""


class UnresolvableHost(Exception):
    """A host name that DNS does not know."""


# Not public, whatever this Python's `is_global` says (its tables changed in 3.11.10,
# 3.12.4 and 3.13; some of these it calls global): IANA's special-purpose registries
# plus deprecated ranges that a router may still deliver inside a network.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 itself reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/96",  # unspecified, loopback, IPv4-compatible (deprecated: ::127.0.0.1)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo is judged by its client)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 segment identifiers
        "fc00::/7",  # unique local (fd00::/8)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed in some networks)
        "ff00::/8",  # multicast
    )
)

# The well-known NAT64 prefix: a translator on the path connects to the IPv4 address
# in the last 32 bits, so 64:ff9b::a9fe:a9fe is 169.254.169.254.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_is_public(address: str) -> bool:
    """True for an address on the public internet.

    An IPv6 address that carries an IPv4 address a translator or tunnel would reach
    (IPv4-mapped, NAT64, 6to4, Teredo) is judged by that IPv4 address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            ip = embedded
    if any(ip in network for network in _NOT_PUBLIC):
        return False
    return ip.is_global and not ip.is_multicast


class AddressPolicy:
    """Which addresses connections may go to: public ones, or what the config allows."""

    def __init__(self, allow_private: bool, allow_networks: Iterable[str] = ()) -> None:
        self._allow_private = allow_private
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in allow_networks]

    def allows(self, address: str) -> bool:
        """True when a connection to `address` (an IP address) is allowed."""
        if self._allow_private or address_is_public(address):
            return True
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip in network for network in self._allowed)
