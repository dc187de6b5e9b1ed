"""Peak memory of process trees, sampled from /proc while a phase runs (Linux only)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TypedDict


class Peak(TypedDict):
    rss_kb: int
    pss_kb: int
    processes: int


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    return children


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class Sampler(threading.Thread):
    """Peak summed RSS/PSS of process trees (the phase, the server) while the with-block runs.

    roots names each tree by its root pid; a root of None (no server) keeps a peak of zeros.
    """

    def __init__(self, roots: Mapping[str, int | None], interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.roots = {key: pid for key, pid in roots.items() if pid}
        self.interval = interval
        self.peak: dict[str, Peak] = {key: {"rss_kb": 0, "pss_kb": 0, "processes": 0} for key in roots}
        self.stopping = threading.Event()

    def sample(self) -> None:
        children = _children_map()
        for key, root in self.roots.items():
            pids = _tree(root, children)
            rss = pss = 0
            for pid in pids:
                r, p = _memory_kb(pid)
                rss, pss = rss + r, pss + p
            peak = self.peak[key]
            if pss > peak["pss_kb"]:
                peak["pss_kb"], peak["processes"] = pss, len(pids)
            peak["rss_kb"] = max(rss, peak["rss_kb"])

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stopping.set()
        self.join()


def own_peak_kb() -> int:
    """This process's peak RSS in kB (VmHWM), which exec resets.

    ru_maxrss of a fresh child starts at its parent's RSS (Linux keeps the pre-exec high-water
    mark), so a child reads its own peak here instead.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
