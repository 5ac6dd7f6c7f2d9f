"""One Redis or a Redis Cluster: connecting to either, what their errors mean, and the inbox
steps that need different commands on each.

A ``redis+cluster://`` (or ``rediss+cluster://``) URL means Redis Cluster: the client is then
``redis.cluster.RedisCluster``, which routes each command to its slot's master and follows
failovers. A cluster runs a command only when all its keys share one slot, and ``WAIT`` counts the
replicas that have the writes of *its own connection*: so a read over every shard becomes a sweep
of each, and a replicated write pins its connection to the node that owns the key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
import structlog
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.exceptions import ClusterError, NoScriptError, RedisClusterException
from redis.retry import Retry

from parley.errors import Unavailable

logger = structlog.get_logger("parley.redis")

# One Redis or a Redis Cluster: both take the same commands here (see ``connect``).
Client = redis.Redis | RedisCluster
# What a Redis call may raise: RedisCluster's "no node reachable" is not a RedisError.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}  # as the `limits` library reads them
_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 10, "health_check_interval": 15}


def connect(url: str) -> Client:
    """A client that fails fast when Redis is down (the webhook answers 503 and the platform retries)
    and reconnects by itself when it is back; a cluster client for ``redis+cluster://``."""
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)
    scheme, _, rest = url.partition("://")
    if scheme not in CLUSTER_SCHEMES:
        return redis.Redis.from_url(url, retry=retry, **_TIMEOUTS)
    auth, at, hosts = rest.partition("/")[0].rpartition("@")
    first, *others = hosts.split(",")
    path = rest.partition("/")[2]
    try:
        # The client asks a reachable node for the slot map now (RedisCluster has no lazy start).
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{auth}{at}{first}/{path}", retry=retry,
                                     startup_nodes=[ClusterNode(*_host_port(other)) for other in others],
                                     **_TIMEOUTS)
    except REDIS_ERRORS as exc:
        raise Unavailable(f"cannot reach the Redis Cluster at {hosts} ({exc})") from exc


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host, int(port)) if host else (address, 6379)


def is_cluster(client: Client) -> bool:
    return isinstance(client, RedisCluster)


@contextmanager
def unavailable(doing: str) -> Iterator[None]:
    """Turn Redis connection trouble into ``Unavailable`` (503, so platforms retry)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, ClusterError, RedisClusterException) as exc:
        # ClusterError: CLUSTERDOWN or a master failing over; the client finds the new one next time.
        raise Unavailable(f"cannot {doing}: Redis unreachable ({exc})") from exc
    except redis.ResponseError as exc:
        if str(exc).startswith(("LOADING", "MISCONF", "OOM", "READONLY", "TRYAGAIN", "MOVED", "ASK")):
            raise Unavailable(f"cannot {doing}: Redis refused ({exc})") from exc
        raise


# How often an idle claim sweeps a cluster's shards: the wait a new conversation may have before a
# worker sees it, against one pipelined read per node per sweep while nothing comes.
CLUSTER_POLL_SECONDS = 0.05

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def read_new(client: Client, streams: list[str], *, group: str, consumer: str, count: int, timeout: float,
             closed: threading.Event) -> list[tuple[bytes, Entries]]:
    """Entries new to ``group`` on any of ``streams``, for ``consumer``; waits up to ``timeout``.

    One blocking XREADGROUP over every stream on a single Redis. On a cluster each stream is in a
    slot of its own, so a pipelined non-blocking read of each (grouped per node by the client),
    repeated until something comes, the timeout passes or ``closed`` is set.
    """
    if not is_cluster(client):
        return client.xreadgroup(group, consumer, dict.fromkeys(streams, ">"), count=count,  # type: ignore[arg-type]
                                 block=max(1, int(timeout * 1000))) or []
    deadline = time.monotonic() + timeout
    while True:
        with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xreadgroup(group, consumer, {stream: ">"}, count=count)
            answer = [found for reply in pipe.execute() for found in reply or ()]
        left = deadline - time.monotonic()
        if answer or left <= 0 or closed.wait(min(left, CLUSTER_POLL_SECONDS)):
            return answer


def run_replicated(client: Client, script: Script, keys: list[str], args: list[Any], *,
                   wait: tuple[int, int]) -> tuple[Any, int]:
    """``script``'s answer, and how many replicas had its writes within ``wait[1]`` ms (``WAIT``).

    The script and the WAIT go down one connection to the node that owns ``keys`` (one slot), in
    one round trip: EVALSHA directly, since a pipeline given the Script asks SCRIPT EXISTS first.
    """
    node = client
    if is_cluster(client):
        node = client.get_redis_connection(client.get_node_from_key(keys[0]))
    try:
        try:
            return _evalsha_and_wait(node, script.sha, keys, args, wait)
        except NoScriptError:  # a fresh node (a promoted replica, a restart) has not seen it yet
            node.script_load(script.script)
            return _evalsha_and_wait(node, script.sha, keys, args, wait)
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        if is_cluster(client):  # the slot's master may have moved (a failover): learn the new map
            refresh_slots(client)
        raise


def _evalsha_and_wait(node: redis.Redis, sha: str, keys: list[str], args: list[Any],
                      wait: tuple[int, int]) -> tuple[Any, int]:
    with node.pipeline(transaction=False) as pipe:
        pipe.evalsha(sha, len(keys), *keys, *args)
        pipe.wait(*wait)
        answer, replicas = pipe.execute()
    return answer, int(replicas)


def refresh_slots(client: Client) -> None:
    """Ask the cluster for its slot map again (the client does so itself only for plain commands)."""
    try:
        client.nodes_manager.initialize()  # type: ignore[union-attr]
    except REDIS_ERRORS as exc:
        logger.warning("redis_cluster_refresh_failed", error=type(exc).__name__)
