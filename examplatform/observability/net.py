"""IP allow-lists from the environment (addresses or CIDRs), checked per request."""

import ipaddress
from functools import lru_cache

LOOPBACK = ("127.0.0.0/8", "::1/128")


class Networks:
    """A set of networks; `contains(remote_addr)` is memoised because a few addresses send most requests."""

    def __init__(self, entries):
        self.networks = tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
        self.contains = lru_cache(maxsize=1024)(self._contains)

    def _contains(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)
