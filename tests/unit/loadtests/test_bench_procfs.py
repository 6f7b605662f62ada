"""Reading CPU time and RSS from /proc text (loadtests/bench/procfs.py)."""

from __future__ import annotations

import os

from loadtests.bench.procfs import cpu_seconds, parse_cpu_ticks, parse_rss_kib, rss_mib


def test_cpu_ticks_are_utime_plus_stime_even_when_the_command_name_has_spaces() -> None:
    stat = "4242 (python (bench) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 25 0 0 20 0 3 0"
    assert parse_cpu_ticks(stat) == 175


def test_rss_is_read_from_the_vmrss_line_in_kib() -> None:
    status = "Name:\tpython\nVmPeak:\t  90000 kB\nVmRSS:\t   45312 kB\nThreads:\t3\n"
    assert parse_rss_kib(status) == 45312
    assert parse_rss_kib("Name:\tzombie\n") == 0


def test_this_process_has_some_cpu_time_and_resident_memory() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert rss_mib(os.getpid()) > 1
