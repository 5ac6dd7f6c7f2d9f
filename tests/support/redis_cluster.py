"""A real Redis Cluster on loopback for the tests and benchmarks: 3 masters, 3 replicas.

Six ``redis-server --cluster-enabled yes`` processes in a temporary directory, joined by
``redis-cli --cluster create --cluster-replicas 1``. Nothing is persisted (``--save ''``, no AOF):
a killed master's data survives only on its replica, which is what a failover test must show.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

NODES = 6
NODE_TIMEOUT_MS = 1000  # a dead master is failed over after about this long (plus the election)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """Ports that are free along with their cluster bus port (port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 55000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


@dataclass
class LocalRedisCluster:
    directory: Path
    ports: list[int] = field(default_factory=lambda: free_cluster_ports(NODES))
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """What a user puts in REDIS_URL: every node, as the runbook advises, so that a client made
        while one is down (a test's, after killing a master) still finds the others."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports) + "/0"

    def start(self) -> None:
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            _wait(lambda port=port: _pings(port), what=f"redis-server on {port}")
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        self.wait_healthy()

    def _start_node(self, port: int) -> None:
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
             "--repl-diskless-sync-delay", "0",  # a new replica syncs at once, not 5 s later
             "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every live node sees the cluster ok, every slot has a live master and every replica is
        in sync with its master (one that is not could not take over)."""
        _wait(self._healthy, what="the Redis Cluster to be ok", timeout=timeout)

    def _healthy(self) -> bool:
        live = [port for port, process in self.processes.items() if process.poll() is None]
        try:
            for port in live:
                client = redis.Redis(port=port, socket_timeout=1)
                if b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    return False
                masters = [node for node in _nodes(client) if "master" in node["flags"]]
                if any(int(node["port"]) not in live or "fail" in node["flags"] for node in masters
                       if node["slots"]):
                    return False
                replication = client.info("replication")
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
        except redis.RedisError:
            return False
        return True

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot now."""
        client = redis.Redis(port=next(p for p, proc in self.processes.items() if proc.poll() is None))
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for node in _nodes(client):
            if "master" in node["flags"] and "fail" not in node["flags"] and any(
                    low <= slot <= high for low, high in node["slots"]):
                return int(node["port"])
        raise AssertionError(f"no live master serves slot {slot}")

    def replica_of(self, port: int, timeout: float = 30) -> int:
        """The port of a replica of the master on ``port``: after a failover an earlier test caused,
        the old master may take a while to rejoin as this one's replica (longer on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = _nodes(redis.Redis(port=port))
            [master_id] = [node["id"] for node in nodes if node["port"] == str(port)]
            replicas = [int(node["port"]) for node in nodes if node["master"] == master_id]  # type: ignore[call-overload]
            if replicas:
                return replicas[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"the master on port {port} has no replica")
            time.sleep(0.2)

    def pause(self, port: int) -> None:
        """SIGSTOP: the node is alive but does nothing (a replica falling behind)."""
        self.processes[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGCONT)

    def kill(self, port: int) -> None:
        """SIGKILL: no shutdown, no last word to the replica."""
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self, port: int) -> None:
        """Bring a killed node back (it rejoins as a replica of its promoted one)."""
        self._start_node(port)
        _wait(lambda: _pings(port), what=f"redis-server on {port}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _nodes(client: redis.Redis) -> list[dict[str, object]]:
    """CLUSTER NODES, parsed: id, its master's id ("-" for a master), port, flags, slot ranges."""
    raw = client.execute_command("CLUSTER", "NODES")  # as the server wrote it (redis-py leaves it)
    nodes = []
    for line in (raw.decode() if isinstance(raw, bytes) else str(raw)).splitlines():
        parts = line.split()
        address, flags = parts[1], parts[2].split(",")
        slots = []
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated
            low, _, high = item.partition("-")
            slots.append((int(low), int(high or low)))
        nodes.append({"id": parts[0], "master": parts[3], "port": address.split("@")[0].rsplit(":", 1)[1],
                      "flags": flags, "slots": slots})
    return nodes


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _wait(condition: object, *, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
