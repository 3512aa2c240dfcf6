"""The bench's tables: printed, and saved under bench/results/ (JSON and Markdown)."""

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SPEED_OF_LIGHT_GOAL = 0.7
GROWTH_LIMIT = 2.0
# The speed-of-light ladder (bench/speed_of_light.py): the bare page, then what the contract
# adds to every authenticated request, then the framework.
SPEED_OF_LIGHT = "list 50 speed-of-light"
WITH_TOKEN_CHECK = "list 50 speed-of-light + token check"
WITH_FLASK = "list 50 speed-of-light + token check + Flask"


def _size(size: int) -> str:
    return (
        f"{size // 1_000_000}M"
        if size % 1_000_000 == 0
        else f"{size // 1000}k"
        if size % 1000 == 0
        else str(size)
    )


def _cells(stats: dict | None) -> list[str]:
    if stats is None:
        return ["-", "", "", ""]
    if "na" in stats:
        return [stats["na"], "", "", ""]
    errors = stats["status_errors"] + stats["socket_errors"]
    rps = f"{stats['rps']:,.0f}" + (f" ({errors} err)" if errors else "")
    sql = f"{stats['queries']:g} / {stats['round_trips']:g}"
    return [rps, f"{stats['p50_ms']:.1f}", f"{stats['p99_ms']:.1f}", sql]


def _growth(first: dict | None, last: dict | None) -> str:
    if not first or not last or "na" in first or "na" in last or not first["p50_ms"]:
        return ""
    ratio = last["p50_ms"] / first["p50_ms"]
    return f"x{ratio:.1f}" + (" (over x2)" if ratio > GROWTH_LIMIT else "")


def markdown_table(results: dict[int, dict]) -> str:
    sizes = list(results)
    names = list(dict.fromkeys(name for by_name in results.values() for name in by_name))
    header = ["scenario"]
    for size in sizes:
        header += [
            f"{_size(size)} req/s",
            f"{_size(size)} p50 ms",
            f"{_size(size)} p99 ms",
            f"{_size(size)} SQL",
        ]
    if len(sizes) > 1:
        header.append(f"p50 {_size(sizes[0])}→{_size(sizes[-1])}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        row = [name]
        for size in sizes:
            row += _cells(results[size].get(name))
        if len(sizes) > 1:
            row.append(_growth(results[sizes[0]].get(name), results[sizes[-1]].get(name)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def ratios(results: dict[int, dict]) -> list[str]:
    """The list page against the speed of light (the goal) and the ladder's other rungs."""
    lines = []
    for size, by_name in results.items():
        api = by_name.get("list 50")
        if not api or "rps" not in api:
            lines.append(f"list 50 at {_size(size)}: API / speed of light = n/a (the list route is missing)")
            continue
        for rung in (SPEED_OF_LIGHT, WITH_TOKEN_CHECK, WITH_FLASK):
            reference = by_name.get(rung)
            if not reference or not reference.get("rps"):
                continue
            ratio = api["rps"] / reference["rps"]
            line = f"list 50 at {_size(size)}: API / {rung.removeprefix('list 50 ')} = {ratio:.2f}"
            if rung == SPEED_OF_LIGHT:
                verdict = "meets" if ratio >= SPEED_OF_LIGHT_GOAL else "below"
                line += f" ({verdict} the goal of {SPEED_OF_LIGHT_GOAL})"
            lines.append(line)
    return lines


def print_table(results: dict[int, dict], args) -> None:
    table = markdown_table(results)
    notes = ratios(results)
    setting = (
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; gunicorn {args.workers} sync workers "
        f"x {args.gunicorn_threads} thread(s), LOG_LEVEL={args.log_level}; {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    legend = "SQL = data statements / all round trips (with BEGIN, COMMIT, ROLLBACK, pre-ping) per request"
    print("\n" + table + "\n\n" + "\n".join(notes) + f"\n\n{setting}\n{legend}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"bench-{stamp}.json").write_text(
        json.dumps({str(k): v for k, v in results.items()}, indent=2)
    )
    (RESULTS / "latest.md").write_text(f"{table}\n\n" + "\n".join(notes) + f"\n\n{setting}\n{legend}\n")
    print(f"\nsaved: {RESULTS / 'latest.md'}, {RESULTS / f'bench-{stamp}.json'}")


def print_profile(shares: dict[str, dict]) -> None:
    print("\nwhere a worker's time goes (pyinstrument samples, share of wall time per request):")
    for name, by_category in shares.items():
        if "na" in by_category:
            print(f"  {name}: {by_category['na']}")
            continue
        top = ", ".join(f"{category} {share:.0%}" for category, share in list(by_category.items())[:6])
        print(f"  {name}: {top}")
    print(f"\nflame charts and call trees: {RESULTS}/profile-*.html, profile-*.txt")


def print_stages(timings: dict[str, float]) -> None:
    print("\nthe list page in-process, one thread, PostgreSQL waits included (median of 5 rounds):")
    width = max(map(len, timings))
    for stage, microseconds in timings.items():
        print(f"  {stage:<{width}}  {microseconds:>8,.1f} µs")
