#!/usr/bin/env python3
"""Samples the resident memory of a process's descendants, split in two.

    bench_rss.py PID OUT.json

Every 25 ms, until PID exits, sums RssAnon (heap, stacks: memory only this
run uses) and RssFile (pages mapped from files: the program's own code and
its shared libraries, shared with the page cache) over every descendant of
PID, and writes the peaks to OUT.json. scripts/bench.sh starts it next to
`/usr/bin/time -v`, whose single peak-RSS figure cannot say which part a
tool's memory is. Sampled, so a peak shorter than 25 ms can be missed; the
process tree is re-read every second (reading all of /proc each time would
take CPU from the tools being measured: as it is, the sampler uses about 3%
of one core).
Standard library only.
"""

import json
import os
import sys
import time


def parents():
    """pid → parent pid for every process now running."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; the ppid follows its ')'.
        out[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    return out


def descendants(root):
    tree = parents()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in tree.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


def rss_kib(pid):
    anon = file = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
                elif line.startswith(("RssFile:", "RssShmem:")):
                    file += int(line.split()[1])
    except OSError:
        pass
    return anon, file


def main():
    root, out = int(sys.argv[1]), sys.argv[2]
    peak = {"peakAnonKiB": 0, "peakFileKiB": 0, "samples": 0}
    pids, tick = set(), 0
    while os.path.exists(f"/proc/{root}"):
        if not pids or tick % 40 == 0:
            pids = descendants(root)
        tick += 1
        anon = file = 0
        for pid in pids:
            a, f = rss_kib(pid)
            anon, file = anon + a, file + f
        if anon or file:
            peak["samples"] += 1
            peak["peakAnonKiB"] = max(peak["peakAnonKiB"], anon)
            peak["peakFileKiB"] = max(peak["peakFileKiB"], file)
        time.sleep(0.025)
    with open(out, "w") as f:
        json.dump(peak, f)


if __name__ == "__main__":
    main()
