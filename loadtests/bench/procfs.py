"""CPU time and resident memory of a process and its descendants, read from /proc.

Stdlib only. Summed over the process tree because a server may fork workers. Starting and
stopping the processes is ``loadtests.processes``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def usable_cpus() -> set[int]:
    """The cpus this process may run on."""
    return set(os.sched_getaffinity(0))


def _descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def parse_cpu_ticks(stat_text: str) -> int:
    """utime + stime (clock ticks) from the text of /proc/<pid>/stat."""
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat_text.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants."""
    ticks = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            ticks += parse_cpu_ticks(Path(f"/proc/{each}/stat").read_text())
    return ticks / os.sysconf("SC_CLK_TCK")


def parse_rss_kib(status_text: str) -> int:
    """VmRSS in KiB from the text of /proc/<pid>/status (0 when absent)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> float:
    """Resident memory (MiB) of ``pid`` and its live descendants."""
    kib = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            kib += parse_rss_kib(Path(f"/proc/{each}/status").read_text())
    return kib / 1024.0
