"""Test your code against a fake BingX: `BingXSimulator`, and a `LoopClock` for virtual time;
against a hostile one: `HostileServer`, which sends what a broken proxy or an attacker
could (`HostileAnswer`).

Shipped with the package so that you can test code that uses `AssetsClient` without
a BingX account or a network.
"""

from ._faults import Fault
from ._hostile import HEALTHY_BALANCE, HostileAnswer, HostileServer, ReceivedHead
from ._redis_server import LocalRedisCluster, redis_cluster, redis_server
from ._server import SimulatorServer
from ._simulator import BingXSimulator, LoopClock, ReceivedRequest, SimKey

__all__ = [
    "HEALTHY_BALANCE",
    "BingXSimulator",
    "Fault",
    "HostileAnswer",
    "HostileServer",
    "LocalRedisCluster",
    "LoopClock",
    "ReceivedHead",
    "ReceivedRequest",
    "SimKey",
    "SimulatorServer",
    "redis_cluster",
    "redis_server",
]
