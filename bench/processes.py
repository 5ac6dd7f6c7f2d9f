"""What the benchmarks read off the servers they start: the processes behind a port, and their CPU."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the given processes and their children (gunicorn's workers)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in set(all_descendants(pids)):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def all_descendants(pids: list[int]) -> list[int]:
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return found


def pids_listening_on(port: int) -> list[int]:
    """gunicorn's master and workers, found through the socket they share."""
    inode = next(line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "0A")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == f"socket:[{inode}]" for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids
