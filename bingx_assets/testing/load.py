"""A load process: its own clients, a shared Redis limiter, N calls per key.

Run several at once against one simulator (`SimulatorServer`) to see that processes
sharing Redis keep one budget per UID:

    python -m bingx_assets.testing.load --base-url URL --redis URL --calls 4 KEY:SECRET:UID ...
"""

from __future__ import annotations

import argparse
import asyncio

from .. import AssetsClient, Rate, RateLimiter, RateLimits
from .._limiter._redis import RedisBackend


async def run(args: argparse.Namespace) -> None:
    backend = RedisBackend.from_url(args.redis, namespace=args.namespace)
    limits = RateLimits(per_uid=Rate(5, args.uid_period))
    limiter = RateLimiter(limits, backend=backend)
    clients = []
    for entry in args.keys:
        api_key, secret_key, uid = entry.split(":")
        clients.append(
            AssetsClient(api_key, secret_key, uid=uid, base_url=args.base_url, limiter=limiter)
        )
    try:
        await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(args.calls)))
    finally:
        for client in clients:
            await client.aclose()
        await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument(
        "--redis",
        required=True,
        help="redis://, rediss:// or unix:// URL; ?cluster=true for a Redis Cluster",
    )
    parser.add_argument("--namespace", default="bingx-assets")
    parser.add_argument("--calls", type=int, default=10, help="calls per key")
    parser.add_argument("--uid-period", type=float, default=1.0, help="seconds per 5 calls")
    parser.add_argument("keys", nargs="+", help="API_KEY:SECRET_KEY:UID")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
