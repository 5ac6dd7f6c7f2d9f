"""Parley on a real Redis Cluster (3 masters, 3 replicas on loopback): a master killed while
messages pour in loses none that was acknowledged, and ``parley doctor`` says what REDIS_URL
should be."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from parley.errors import Unavailable
from parley.core.envelope import Reply
from parley.stores.redis import RedisMailbox, connect
from parley.stores.redis_inbox import RedisInbox
from parley.wiring import redis_inbox_of
from parley.settings import load_settings
from tests.conftest import make_envelope
from tests.integration.conftest import redis_inbox_factory
from tests.integration.redis_processes import wait_until, write_config
from tests.integration.test_doctor import doctor, lines
from tests.integration.test_server import free_port
from tests.support.redis_cluster import LocalRedisCluster

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A cluster of this test's own: it kills a master, which the session's cluster must keep."""
    cluster = LocalRedisCluster(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class Platform:
    """Delivers numbered messages, each until it is acknowledged, as Slack retries a 503: an
    acknowledgement is ``put`` returning (stored, or recognised as a redelivery)."""

    def __init__(self, inbox: RedisInbox) -> None:
        self.inbox = inbox
        self.acked: list[str] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._deliver, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _deliver(self) -> None:
        number = 0
        while not self._stop.is_set():
            envelope = make_envelope(f"message {number}", conversation_id=f"conv-{number % 48}",
                                     message_id=f"m{number}")
            while True:
                try:
                    self.inbox.put(envelope)
                    break
                except Unavailable:  # a 503: the platform delivers the same message again
                    self.refused += 1
                    time.sleep(0.02)
            self.acked.append(envelope.message_id)
            number += 1


def drain(inbox: RedisInbox) -> list[str]:
    """Every message the inbox holds, as a worker takes them, until none is left anywhere."""
    delivered: list[str] = []

    def empty() -> bool:
        for claim in inbox.claim(64, timeout=0.2):
            while (delivery := inbox.next(claim)) is not None:
                delivered.append(delivery.envelope.message_id)
                inbox.done(delivery)
        status = inbox.status()
        return status["queued"] == status["in_flight"] == status["ready"] == 0

    wait_until(empty, timeout=60, what="the inbox to be drained", every=0)
    return delivered


def test_killing_a_master_loses_no_acknowledged_message_and_delivers_each_once(
        own_cluster: LocalRedisCluster, tmp_path: Path) -> None:
    # The shipped settings but a prefix of the test's own; on a cluster, acks wait for a replica.
    settings = load_settings(write_config(tmp_path, key_prefix=f"parley-test-{uuid.uuid4().hex[:8]}:"),
                             environ={"REDIS_URL": own_cluster.url, "PARLEY_DATA_DIR": str(tmp_path / "var")})
    inbox = redis_inbox_of(settings)
    victim = own_cluster.master_of(inbox.key(0, "ready"))
    platform = Platform(inbox)
    platform.start()
    try:
        wait_until(lambda: len(platform.acked) >= 300, timeout=30, what="300 acknowledged messages")
        own_cluster.kill(victim)  # mid-stream: puts to its shards are in flight right now
        before_failover = len(platform.acked)
        own_cluster.wait_healthy()  # its replica was promoted
        own_cluster.restart(victim)  # as Kubernetes restarts the pod: it comes back as a replica
        own_cluster.wait_healthy()
        wait_until(lambda: len(platform.acked) >= before_failover + 300, timeout=30,
                   what="300 more acknowledged messages after the failover")
    finally:
        platform.stop()
    assert platform.refused > 0  # the kill was felt: some deliveries got a 503 and came again
    worker = redis_inbox_of(settings)  # another process drains
    delivered = drain(worker)
    worker.close()
    inbox.close()
    assert len(set(platform.acked)) == len(platform.acked)
    assert Counter(delivered) == Counter(platform.acked)  # every acknowledged one, each once


def test_an_ack_waits_for_the_replica_so_the_master_dying_next_loses_nothing(
        own_cluster: LocalRedisCluster) -> None:
    options = {"prefix": f"parley-test-{uuid.uuid4().hex[:8]}:", "dedupe_ttl": 600, "visibility_timeout": 5,
               "max_attempts": 3, "shards": 1}
    # Without the WAIT (wait_replicas=0) "m1" is acked from the master alone, and lost.
    inbox = RedisInbox(connect(own_cluster.url), wait_replicas=1, wait_timeout_ms=2000, **options)
    inbox.put(make_envelope("hello", conversation_id="conv-a", message_id="m0"))  # the client knows the map
    victim = own_cluster.master_of(inbox.key(0, "ready"))
    replica = own_cluster.replica_of(victim)
    own_cluster.pause(replica)  # replication stalls for a moment, as under load or a network blip
    # ... with a backlog bigger than the sockets' buffers, so the next write waits in the master
    with inbox.client.pipeline(transaction=False) as pipe:
        for number in range(32):
            pipe.set(inbox.key(0, f"backlog:{number}"), b"x" * 1_000_000)
        pipe.execute()
    threading.Timer(0.3, own_cluster.resume, args=(replica,)).start()
    inbox.put(make_envelope("where is my order?", conversation_id="conv-a", message_id="m1"))
    own_cluster.kill(victim)  # right after the ack
    own_cluster.resume(replica)
    own_cluster.wait_healthy()  # the replica took over
    worker = RedisInbox(connect(own_cluster.url), **options)
    assert sorted(drain(worker)) == ["m0", "m1"]
    worker.close()
    inbox.close()


def test_doctor_describes_the_cluster_and_names_the_url_a_cluster_node_needs(
        redis_cluster: LocalRedisCluster, tmp_path: Path) -> None:
    checks = lines(doctor(tmp_path, REDIS_URL=redis_cluster.url).stdout)
    # The test cluster keeps nothing on disk (appendonly no), which a production cluster must not.
    assert checks["redis"][0] == "warn"
    assert "Redis Cluster of 3 masters, 3 replicas, state ok" in checks["redis"][1]
    assert "acks wait for 1 replica(s)" in checks["redis"][1]
    assert "appendonly no on 127.0.0.1:" in checks["redis"][1] and "answered again" in checks["redis"][1]
    node = f"127.0.0.1:{redis_cluster.ports[1]}"
    done = doctor(tmp_path, REDIS_URL=f"redis://{node}/0")  # the usual scheme, on a cluster node
    assert done.returncode == 1
    assert lines(done.stdout)["redis"] == (
        "FAIL", f"redis://{node}/0 is a Redis Cluster node: set REDIS_URL to redis+cluster://{node}/0 "
                "(rediss+cluster:// for TLS)")


def test_an_unreachable_cluster_is_unavailable_with_its_address_not_its_password() -> None:
    where = r"127\.0\.0\.1:\d+,127\.0\.0\.1:\d+"
    with pytest.raises(Unavailable, match=f"cannot reach the Redis Cluster at {where}") as caught:
        connect(f"redis+cluster://:secret-9@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/0")
    assert "secret-9" not in str(caught.value)


def test_a_url_may_list_several_nodes_and_any_one_reachable_is_enough(redis_cluster: LocalRedisCluster) -> None:
    dead, alive = free_port(), redis_cluster.ports[2]
    client = connect(f"redis+cluster://127.0.0.1:{dead},127.0.0.1:{alive}/0")
    assert len(client.get_primaries()) == 3


def test_a_master_that_never_saw_the_scripts_still_stores_and_waits(cluster_inbox: RedisInbox) -> None:
    inbox = cluster_inbox
    inbox.client.script_flush()  # as on a replica just promoted, or a node just restarted
    assert inbox.put(make_envelope("hello", conversation_id="conv-a")) is True
    [claim] = inbox.claim(1, timeout=1)
    delivery = inbox.next(claim)
    assert delivery is not None and delivery.envelope.text == "hello"


@pytest.fixture
def cluster_inbox(request: pytest.FixtureRequest, redis_cluster: LocalRedisCluster) -> RedisInbox:
    return redis_inbox_factory(request, redis_cluster.url)(wait_replicas=1)


def test_browsers_waiting_on_the_mailbox_are_woken_after_its_pub_sub_master_fails_over(
        own_cluster: LocalRedisCluster) -> None:
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    # Rechecking only after the wait: an answer in time can only come by the pub/sub wake-up.
    reader = RedisMailbox(connect(own_cluster.url), prefix=prefix, recheck_seconds=60)
    publisher = RedisMailbox(connect(own_cluster.url), prefix=prefix)
    first = Reply(conversation_id="conv-1", channel="widget", text="Hello!", in_reply_to="conv-1:m1")
    threading.Timer(0.3, publisher.publish, args=("conv-1", [first])).start()
    assert reader.wait_for("conv-1", "conv-1:m1", timeout=10) == [first]  # the listener is subscribed
    own_cluster.kill(own_cluster.master_of(reader.channel))  # the node the listener listens on
    own_cluster.wait_healthy()
    later = Reply(conversation_id="conv-1", channel="widget", text="Still here.", in_reply_to="conv-1:m2")
    # The listener subscribed again, on a live node; from here only a published event wakes it.
    wait_until(lambda: _subscribers(own_cluster, reader.channel) >= 1, timeout=30,
               what="the listener to resubscribe")
    threading.Timer(0.3, publisher.publish, args=("conv-1", [later])).start()
    assert reader.wait_for("conv-1", "conv-1:m2", timeout=10) == [later]


def _subscribers(cluster: LocalRedisCluster, channel: str) -> int:
    """Subscriptions to ``channel`` over the live nodes (a subscription is one node's)."""
    total = 0
    for port, process in cluster.processes.items():
        if process.poll() is None:
            [(_name, count)] = redis.Redis(port=port, socket_timeout=2).pubsub_numsub(channel)
            total += count
    return total
