"""`beacon certs`: a local CA and the TLS certificates of a deployment."""

from __future__ import annotations

import argparse
import sys

from beacon.certs import create_deployment_certificates, region_server_name
from beacon.regions import KNOWN_REGIONS, UnknownRegionError, canonical_region


def run(args: argparse.Namespace) -> int:
    try:
        regions = tuple(
            canonical_region(name.strip(), KNOWN_REGIONS)
            for name in args.regions.split(",")
            if name.strip()
        )
    except UnknownRegionError as exc:
        print(f"beacon certs: --regions: {exc}", file=sys.stderr)
        return 2
    written = create_deployment_certificates(args.out, regions, tuple(args.host))
    for path in written:
        print(path)
    print(
        "private keys beside them (.key, mode 600); ca.key signs more later. "
        "Agent certificates name their region, e.g. "
        f"{region_server_name(regions[0] if regions else 'us-east')}"
    )
    return 0
