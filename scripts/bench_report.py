#!/usr/bin/env python3
"""Summarizes a scripts/bench.sh output folder as Markdown (stdout).

Reads what the parts left: latency.json (benches/harness.rs latency),
repeat.json (breakfix's JSON report of the --repeat run), compare.jsonl plus
per-round <tag>.time (/usr/bin/time -v), <tag>.rss.json (scripts/bench_rss.py),
<tag>.reference.jsonl (Kubernetes' own timing of the round), breakfix-N.json
and ctk-N.journal.json (verdicts).
Standard library only. A round that failed to run (breakfix with no verdict,
Chaos Toolkit not completed, the bare program exiting non-zero) is listed
but never enters a median or a ratio; a tool with no valid round says so.
Exit status 3 when any round failed (after printing everything), so that
scripts/bench.sh fails loudly.
"""

import json
import math
import re
import statistics
import sys
from datetime import datetime
from pathlib import Path


def ts(value):
    """RFC 3339 with up to nanoseconds → seconds since the epoch (float)."""
    if value is None:
        return None
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", value)
    if not m:
        raise ValueError(f"not a timestamp: {value}")
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + (float(m.group(2)) if m.group(2) else 0.0)


def nearest_rank(values, p):
    v = sorted(values)
    if not v:
        return None
    rank = math.ceil(p * len(v))
    return v[min(max(rank, 1), len(v)) - 1]


def fmt_ms(v):
    if v is None:
        return "–"
    if abs(v) >= 10_000:
        return f"{v / 1000:.1f} s"
    if abs(v) >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.0f} ms" if abs(v) >= 10 else f"{v:.1f} ms"


def fmt_mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"


def parse_time_v(path):
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.strip().partition(": ")
        out[key] = value
    return {
        "user_s": float(out.get("User time (seconds)", "nan")),
        "sys_s": float(out.get("System time (seconds)", "nan")),
        "max_rss_kib": int(out.get("Maximum resident set size (kbytes)", "0")),
    }


def latency_section(folder):
    path = folder / "latency.json"
    if not path.exists():
        return []
    doc = json.loads(path.read_text())
    s = doc["summary"]
    lines = [
        "### (a) Harness latency: signal in the cluster → breakfix reports it",
        "",
        f"{s['all']['injected']} signals injected, {s['all']['missed']} missed "
        "(not reported within 10 s). Milliseconds; nearest-rank percentiles.",
        "",
        "| signal source | n | measured from | p50 | p90 | p95 | p99 | max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {"event": "events.k8s.io Event (BackOff)", "podStatus": "pod status (waiting: ImagePullBackOff)", "all": "all"}
    for source in ("event", "podStatus", "all"):
        for key, what in (
            ("fromSendMs", "write sent (upper bound)"),
            ("fromAckMs", "write acknowledged (lower bound)"),
            ("breakfixMinusReferenceMs", "bare watcher received it (breakfix's own processing)"),
        ):
            st = s[source].get(key)
            if not st:
                continue
            lines.append(
                f"| {labels[source]} | {st['n']} | {what} | {st['p50']} | {st['p90']} | {st['p95']} | {st['p99']} | {st['max']} |"
            )
    rt = s["all"].get("writeRoundTripMs")
    if rt:
        lines += ["", f"The writes themselves took p50 {rt['p50']} ms, p95 {rt['p95']} ms (send → acknowledgement)."]
    p95 = s["all"]["fromSendMs"]["p95"] if s["all"].get("fromSendMs") else None
    if p95 is not None:
        verdict = "meets" if p95 < 250 else "misses"
        lines += ["", f"**Target p95 < 250 ms: {verdict}** (p95 {p95} ms, measured from the write being sent)."]
    return lines + [""]


def repeat_section(folder):
    path = folder / "repeat.json"
    if not path.exists():
        return [], 0
    report = json.loads(path.read_text())
    exp = report["experiments"][0]
    if exp["outcome"] not in ("passed", "failed"):
        errors = "; ".join(t["error"]["message"] for t in exp["trials"] if t.get("error"))
        return [
            "### (a′) `breakfix run --repeat`: the image-typo experiment, real signals",
            "",
            f"**No valid result: the run ended `{exp['outcome']}`** ({errors or 'see repeat.log'}); no figure is reported.",
            "",
        ], 1
    lat, det, rec = [], [], []
    sources = {"since": 0, "none": 0}
    for t in exp["trials"]:
        m = t["marks"]
        if m.get("injected") and m.get("detected"):
            det.append((ts(m["detected"]) - ts(m["injected"])) * 1000)
        if m.get("recovered") and (m.get("reverted") or m.get("injected")):
            rec.append((ts(m["recovered"]) - ts(m.get("reverted") or m["injected"])) * 1000)
        if m.get("signal") and m.get("detected"):
            lat.append(max(0.0, (ts(m["detected"]) - ts(m["signal"])) * 1000))
            sources["since"] += 1
        else:
            sources["none"] += 1
    lines = [
        f"### (a′) `breakfix run --repeat {len(exp['trials'])}`: the image-typo experiment, real signals",
        "",
        f"Outcome **{exp['outcome']}**{' (flaky)' if exp.get('flaky') else ''}. "
        "Per-trial times from the JSON report's `marks`.",
        "",
        "| measure | n | min | p50 | p95 | max |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in (
        ("time to detect (injected → detected)", det),
        ("time to recover (reverted → recovered)", rec),
        ("harness latency (marks.signal → marks.detected)", lat),
    ):
        if values:
            lines.append(
                f"| {name} | {len(values)} | {fmt_ms(min(values))} | {fmt_ms(nearest_rank(values, .5))} | "
                f"{fmt_ms(nearest_rank(values, .95))} | {fmt_ms(max(values))} |"
            )
    lines += [
        "",
        f"{sources['since']} of {len(exp['trials'])} detections carried a cluster timestamp (`marks.signal`); "
        "the kubelet's events and conditions have one-second precision, so these latencies are "
        "bounded by that rounding (clamped at 0), unlike part (a).",
        "",
    ]
    return lines, 0


TOOLS = {"breakfix": "breakfix", "ctk": "Chaos Toolkit", "bare": "bare kube-rs"}


def round_verdict(folder, tool, n, exit_code):
    """The round's verdict as the tool gave it, and whether the round ran:
    its figures measure the experiment only if the tool carried it out."""
    if tool == "breakfix":
        rep = folder / f"breakfix-{n}.json"
        if not rep.exists():
            return "no report", False
        outcome = json.loads(rep.read_text())["experiments"][0]["outcome"]
        # passed / failed are verdicts on a run that happened; error and
        # interrupted are not.
        return outcome, exit_code in (0, 1) and outcome in ("passed", "failed")
    if tool == "ctk":
        journal = folder / f"ctk-{n}.journal.json"
        if not journal.exists():
            return "no journal", False
        j = json.loads(journal.read_text())
        deviated = not j.get("steady_states", {}).get("after", {}).get("steady_state_met", True)
        status = j.get("status", "?")
        return status + (" (deviated)" if deviated else ""), exit_code == 0 and status == "completed"
    # The bare program writes no verdict: exit 0 means it saw the signal and the recovery.
    return ("completed", True) if exit_code == 0 else ("failed", False)


def compare_section(folder):
    path = folder / "compare.jsonl"
    if not path.exists():
        return [], 0
    rounds = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    per_tool = {tool: [] for tool in TOOLS}
    for r in rounds:
        tool, _, n = r["tag"].rpartition("-")
        tv = parse_time_v(folder / f"{r['tag']}.time")
        ref_path = folder / f"{r['tag']}.reference.jsonl"
        ref = None
        if ref_path.exists() and ref_path.read_text().strip():
            ref = json.loads(ref_path.read_text().splitlines()[-1])
        k8s_ms = None
        if ref and all(ref.get(k) for k in ("patched", "signal", "restored", "steady")):
            k8s_ms = ((ts(ref["signal"]) - ts(ref["patched"])) + (ts(ref["steady"]) - ts(ref["restored"]))) * 1000
        rss_path = folder / f"{r['tag']}.rss.json"
        rss = json.loads(rss_path.read_text()) if rss_path.exists() else {}
        wall_ms = r["wallNs"] / 1e6
        verdict, valid = round_verdict(folder, tool, n, r["exit"])
        per_tool[tool].append(
            {
                "round": int(n),
                "exit": r["exit"],
                "verdict": verdict,
                "valid": valid,
                "wall_ms": wall_ms,
                "k8s_ms": k8s_ms,
                "overhead_ms": None if k8s_ms is None else wall_ms - k8s_ms,
                "cpu_ms": (tv["user_s"] + tv["sys_s"]) * 1000,
                "rss_kib": tv["max_rss_kib"],
                "anon_kib": rss.get("peakAnonKiB") or None,
                "file_kib": rss.get("peakFileKiB") or None,
                "cg_mem_kib": None if r.get("cgroupMemPeakBytes") is None else r["cgroupMemPeakBytes"] / 1024,
                "cg_cpu_ms": None if r.get("cgroupCpuNs") is None else r["cgroupCpuNs"] / 1e6,
            }
        )

    valid = {tool: [x for x in per_tool[tool] if x["valid"]] for tool in TOOLS}
    failed = {tool: len(per_tool[tool]) - len(valid[tool]) for tool in TOOLS}

    def med(tool, key):
        values = [x[key] for x in valid[tool] if x[key] is not None]
        return statistics.median(values) if values else None

    def ratio(key, tool="breakfix"):
        a, b = med("ctk", key), med(tool, key)
        if a is None or b is None or b <= 0:
            return "–"
        return f"{a / b:.1f}×"

    def row(name, key, fmt, with_ratio=True):
        cells = [fmt(med(tool, key)) if valid[tool] else "no valid round" for tool in TOOLS]
        ratios = [ratio(key), ratio(key, "bare")] if with_ratio else ["–", "–"]
        return f"| {name} | " + " | ".join(cells + ratios) + " |"

    lines = [
        "### (b, c) image-typo: breakfix, Chaos Toolkit and bare kube-rs side by side",
        "",
    ]
    for tool, label in TOOLS.items():
        if per_tool[tool] and not valid[tool]:
            lines += [
                f"**{label}: no valid round.** All {len(per_tool[tool])} failed to run "
                f"(exit {', '.join(str(x['exit']) for x in per_tool[tool])}; see {tool}-N.log); "
                f"no {label} figure below comes from them.",
                "",
            ]
        elif failed[tool]:
            lines += [
                f"**{label}: {failed[tool]} of {len(per_tool[tool])} rounds failed to run** and are left out of the medians.",
                "",
            ]
    lines += [
        f"{len(per_tool['breakfix'])} rounds per tool on the same cluster, each round starting with a different tool. "
        "Medians over the rounds that ran; a ratio is Chaos Toolkit ÷ that tool (higher: that tool better). "
        "*bare kube-rs* is the same experiment written directly against breakfix's stack "
        "(`benches/bare_image_typo.rs`): the least any tool on that stack can use.",
        "",
        "| measure | breakfix | Chaos Toolkit | bare kube-rs | ratio, breakfix | ratio, bare |",
        "|---|---|---|---|---|---|",
        row("time to verdict (process start → exit)", "wall_ms", fmt_ms),
        row("Kubernetes' own time in the round (reference watcher)", "k8s_ms", fmt_ms, with_ratio=False),
        row("**overhead beyond Kubernetes' own timing**", "overhead_ms", fmt_ms),
        row("CPU time, user + system (`time -v`, with children)", "cpu_ms", fmt_ms),
        row("peak RSS (`time -v`)", "rss_kib", fmt_mib),
    ]
    if med("breakfix", "anon_kib") is not None:
        lines += [
            row("peak anonymous memory: heap, stacks (sampled)", "anon_kib", fmt_mib),
            row("peak file-backed memory: code, libraries (sampled)", "file_kib", fmt_mib),
        ]
    if med("breakfix", "cg_cpu_ms") is not None:
        lines += [
            row("CPU time (cgroup cpuacct, whole process tree)", "cg_cpu_ms", fmt_ms),
            row("peak memory (cgroup, incl. page cache)", "cg_mem_kib", fmt_mib),
        ]
    lines += [
        "",
        "Per round:",
        "",
        "| tool | round | verdict | exit | wall | k8s | overhead | CPU | peak RSS | anonymous | file-backed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool, label in TOOLS.items():
        for x in sorted(per_tool[tool], key=lambda x: x["round"]):
            if not x["valid"]:
                lines.append(
                    f"| {label} | {x['round']} | {x['verdict']} (failed to run: left out) | {x['exit']} |"
                    + " – |" * 7
                )
                continue
            lines.append(
                f"| {label} | {x['round']} | {x['verdict']} | {x['exit']} | "
                f"{fmt_ms(x['wall_ms'])} | {fmt_ms(x['k8s_ms'])} | {fmt_ms(x['overhead_ms'])} | {fmt_ms(x['cpu_ms'])} | "
                f"{fmt_mib(x['rss_kib'])} | {fmt_mib(x['anon_kib'])} | {fmt_mib(x['file_kib'])} |"
            )
    versions = folder / "ctk-versions.txt"
    if versions.exists():
        lines += ["", "Chaos Toolkit: " + ", ".join(versions.read_text().split())]
    return lines + [""], sum(failed.values())


def main():
    folder = Path(sys.argv[1])
    lines = [f"## Results ({folder.name})", ""]
    lines += latency_section(folder)
    repeat, failed_repeat = repeat_section(folder)
    compare, failed_rounds = compare_section(folder)
    lines += repeat + compare
    failed_rounds += failed_repeat
    print("\n".join(lines))
    if failed_rounds:
        print(f"bench_report.py: {failed_rounds} round(s) failed to run; left out of the summary", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
