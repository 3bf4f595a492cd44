"""One OS process of the multi-process test: its own clients, the shared Redis limiter.

python -m tests.redis_worker BASE_URL REDIS_URL NAMESPACE CALLS KEY:SECRET:UID ...
"""

from __future__ import annotations

import asyncio
import sys

from bingx_assets import AssetsClient, Rate, RateLimiter, RateLimits, RedisBackend


async def main(base_url: str, redis_url: str, namespace: str, calls: int, keys: list[str]) -> None:
    backend = RedisBackend.from_url(redis_url, namespace=namespace)
    limiter = RateLimiter(RateLimits(per_uid=Rate(5, 0.5), safety_margin=0.05), backend=backend)
    clients = []
    for entry in keys:
        api_key, secret_key, uid = entry.split(":")
        clients.append(
            AssetsClient(api_key, secret_key, uid=uid, base_url=base_url, limiter=limiter)
        )
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(calls)))
    for client in clients:
        await client.aclose()
    await backend.redis.aclose()


if __name__ == "__main__":
    base, redis_url, namespace, calls, *keys = sys.argv[1:]
    asyncio.run(main(base, redis_url, namespace, int(calls), keys))
