"""How the benchmarks time a command: wall clock, and the peak memory of its whole process tree.

``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` reports the largest *single* descendant, which
understates a command that runs a pool of workers; here the resident memory of the process and all its
descendants is summed from /proc every 20 ms, and the peak of that sum is reported (Linux only; where
/proc is missing the single-process figure is used).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants now."""
    tree = _children()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss(pid)
        stack.extend(tree.get(pid, []))
    return total


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak resident bytes of the process tree) of running ``cmd``; raises on failure."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            done.wait(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    if os.path.isdir("/proc"):
        watcher.start()
    _, err = proc.communicate()
    dt = time.perf_counter() - t
    done.set()
    if watcher.is_alive():
        watcher.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    if not peak[0]:
        peak[0] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return dt, peak[0]


def best_of(cmd: list[str], runs: int, fresh: Path | None = None) -> tuple[float, int]:
    """The fastest of ``runs`` runs of ``cmd`` and the highest peak memory seen: on a shared machine the
    minimum is the figure least disturbed by other work. ``fresh``: a folder removed before each run
    (the case the command writes)."""
    best, peak = float("inf"), 0
    for _ in range(max(1, runs)):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        seconds, rss = measured(cmd)
        best, peak = min(best, seconds), max(peak, rss)
    return best, peak
