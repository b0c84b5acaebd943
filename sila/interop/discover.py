"""Finds a SiLA server by mDNS with the sila2 client's discovery browser, by its UUID, connects with
the certificate authority from its TXT record and reads its name.

Usage: discover.py UUID NAME
Exit 0 when found with that name; 1 when found otherwise; 2 when nothing was seen (no multicast here).
"""

import sys
import warnings
from uuid import UUID

from sila2.discovery import SilaDiscoveryBrowser


def main() -> int:
    uuid, name = UUID(sys.argv[1]), sys.argv[2]
    warnings.simplefilter("ignore")
    browser = SilaDiscoveryBrowser()
    try:
        client = browser.find_server(server_uuid=uuid, timeout=15)
    except TimeoutError:
        print(f"no mDNS announcement of {uuid} seen in 15 s")
        return 2
    got = client.SiLAService.ServerName.get()
    print(f"found {uuid} by mDNS at {client.address}:{client.port}, named {got!r}")
    return 0 if got == name else 1


if __name__ == "__main__":
    sys.exit(main())
