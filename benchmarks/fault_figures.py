"""The reliability figures of the README, from the JSON the fault sweep and the serving load
benchmark wrote (``bench_fault_sweep.py --out`` and ``bench_serving_load.py --out``).

Usage::

    .venv/bin/python benchmarks/fault_figures.py sweep.json [more.json ...] [--serving load.json]

Prints a Markdown table: cases tried, faults injected, concurrent runs, Kedro runs, requests
served, lost and duplicated items (and how they were counted), seconds per case.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

HOW = (
    "each re-run root against a clean run of the same day: row multisets of `prices`, "
    "`data_quality_report`, the orders log, `account_history` and `predictions`, SHA-256 of "
    "every raw object, the broker journal's replay (orders, fills, cash, positions); lost = "
    "reference items missing, duplicated = items beyond the reference's count; plus no "
    "temporary file, lock or submission intent left and the account file equal to the journal"
)


def sweep_rows(sweeps: list[dict]) -> list[tuple[str, str]]:
    # The parts of every sweep, merged by storage (several sweeps may cover one storage).
    merged: dict[str, dict] = {}
    for sweep in sweeps:
        for part in sweep["parts"]:
            into = merged.setdefault(part["storage"], {"storage": part["storage"], "cases": []})
            into["cases"] += part["cases"]
            into["points_traced"] = max(into.get("points_traced", 0), part["points_traced"])
    rows = []
    if merged:
        for part in merged.values():
            cases = part["cases"]
            kills = [c for c in cases if c["point"].startswith(("before:", "save:", "end"))]
            deaths = [c for c in cases if c["point"].startswith("s3-dies-")]
            together = [c for c in cases if c["point"].startswith("concurrent:")]
            fired = sum(bool(c["fault_fired"]) for c in kills + deaths)
            good = [
                c
                for c in cases
                if c["fault_fired"]
                and c["rerun_ok"]
                and not c["problems"]
                and c.get("error_names_dataset", True)
            ]
            storage = part["storage"]
            named = sum(bool(c.get("error_names_dataset")) for c in deaths)
            seconds = [c["seconds"] for c in cases]
            kinds = sorted({c["point"].split(":")[0] for c in kills})
            rows += [
                (
                    f"{storage}: cases tried",
                    f"{len(cases)} ({len(kills)} kill points of {part['points_traced']} traced: "
                    f"{', '.join(kinds)}; {len(deaths)} S3 server deaths; "
                    f"{len(together)} concurrent)",
                ),
                (f"{storage}: faults injected", f"{fired} (SIGKILLs and server deaths that fired)"),
                (
                    f"{storage}: concurrent runs",
                    ", ".join(f"{c['runs']} at once" for c in together) or "none",
                ),
                (f"{storage}: Kedro runs after the setup", str(sum(c["runs"] for c in cases))),
                (
                    f"{storage}: lost / duplicated",
                    f"lost: {sum(c['lost'] for c in cases)}, "
                    f"duplicated: {sum(c['duplicated'] for c in cases)} "
                    f"(of {max((c['items'] for c in cases), default=0)} items per root)",
                ),
                (
                    f"{storage}: cases with every check passed",
                    f"{len(good)} of {len(cases)}"
                    + (
                        f"; errors naming the dataset and bucket: {named} of {len(deaths)}"
                        if deaths
                        else ""
                    ),
                ),
                (
                    f"{storage}: seconds per case",
                    f"median {statistics.median(seconds):.0f} s "
                    f"({min(seconds):.0f}–{max(seconds):.0f})"
                    if cases
                    else "-",
                ),
            ]
    for sweep in sweeps:
        # The options, without where the JSON went (a path of the machine it ran on).
        command = re.sub(r"\s*--out\s+\S+", "", sweep["command"])
        rows.append(
            ("sweep run", f"ended {sweep['date']}, {sweep['seconds'] / 60:.0f} min: `{command}`")
        )
    return rows


def serving_rows(serving: dict) -> list[tuple[str, str]]:
    load, fuzz, big = serving["load"], serving["fuzz"], serving["big_valid_request"]
    refused = sum(bool(f["refused_with_reason"]) for f in fuzz)
    still = sum(bool(f["then_valid_ok"]) for f in fuzz)
    served = load["requests"] + 2 * len(fuzz) + 3
    return [
        (
            "serving: requests served",
            f"{served} ({load['requests']} under load, {len(fuzz)} bad ones each followed by a "
            "valid one, a 10 MB valid one, 2 checks)",
        ),
        (
            "serving: load",
            f"{load['clients']} clients for {load['seconds']} s ({serving['rows_per_request']} "
            f"rows per request): {load['throughput_per_s']} requests/s, p50 {load['p50_ms']} ms, "
            f"p95 {load['p95_ms']} ms, p99 {load['p99_ms']} ms, errors {load['errors']}, wrong "
            f"answers {load['wrong_answers']} (machine load average "
            f"{load.get('load_average_1min', '?')} at the end)",
        ),
        (
            "serving: server memory (RSS of its process tree)",
            f"{load['server_rss_start_mb']:.0f} MB at the start, peak "
            f"{load['server_rss_peak_mb']:.0f} MB under load; a valid 10 MB request "
            f"({big['rows']:,} rows): HTTP {big['status']} "
            f"in {big['seconds']} s, peak {big['rss_peak_mb']:.0f} MB",
        ),
        (
            "serving: bad requests",
            f"{refused} of {len(fuzz)} refused with a 4xx naming the problem, the server "
            f"answering correctly after {still} of {len(fuzz)}: "
            + ", ".join(f"{f['case']} ({f['status']})" for f in fuzz),
        ),
        ("serving run", serving["date"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweeps", nargs="*", type=Path)
    parser.add_argument("--serving", type=Path, default=None)
    args = parser.parse_args()
    rows = sweep_rows([json.loads(p.read_text()) for p in args.sweeps])
    if args.serving:
        rows += serving_rows(json.loads(args.serving.read_text()))
    print("| what | figure |\n|---|---|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    print(f"\nHow lost and duplicated are counted: {HOW}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
