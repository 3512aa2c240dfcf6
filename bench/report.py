"""The bench's tables: printed, and saved under bench/results/ (JSON and Markdown)."""

import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GROWTH_LIMIT = 2.0
# The speed-of-light ladder (bench/speed_of_light.py): the bare page, then what the contract
# adds to every authenticated request, then the framework.
SPEED_OF_LIGHT = "list 50 speed-of-light"
WITH_TOKEN_CHECK = "list 50 speed-of-light + token check"
WITH_FLASK = "list 50 speed-of-light + token check + Flask"
# The references of the other scenarios (bench/speed_of_light.py).
GET_REFERENCE = "get one task speed-of-light + token check"
ME_REFERENCE = "me speed-of-light + token check"
HEALTH_REFERENCE = "/health bare Flask + SQLAlchemy pool"
CREATE_REFERENCE = "create task psycopg2 + token check"
# The get and me references again, as routes of a bare Flask app taking their connection from
# a SQLAlchemy pool with the API's options (its pre-ping included): the floor of the stack the
# contract prescribes, which the API's own layers sit on.
GET_FLOOR = "get one task … + Flask + pooled pre-ping"
ME_FLOOR = "me … + Flask + pooled pre-ping"
FLOORS = {"get one task": GET_FLOOR, "me": ME_FLOOR}
# Scenario -> (its reference, the goal for API req/s ÷ reference req/s), issue 12.
REFERENCES = {
    "list 50": (WITH_TOKEN_CHECK, 0.7),
    "get one task": (GET_REFERENCE, 0.7),
    "me": (ME_REFERENCE, 0.7),
    "/health": (HEALTH_REFERENCE, 0.8),
    "create task": (CREATE_REFERENCE, 0.5),
}


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


def _ratio(by_name: dict, name: str, reference_name: str | None = None) -> float | None:
    """API req/s ÷ its reference's req/s: the median over the paired rounds when the bench ran
    them (`--rounds`), else from the two single runs; None when either is missing."""
    if reference_name is None:
        if name not in REFERENCES:
            return None
        reference_name = REFERENCES[name][0]
    api, reference = by_name.get(name), by_name.get(reference_name)
    if not api or not reference or not api.get("rps") or not reference.get("rps"):
        return None
    if rounds := api.get("paired", {}).get(reference_name):
        return statistics.median(rounds)
    return api["rps"] / reference["rps"]


def _ratio_cell(by_name: dict, name: str) -> str:
    ratio = _ratio(by_name, name)
    return "" if ratio is None else f"{ratio:.2f}" + (" (below goal)" if ratio < REFERENCES[name][1] else "")


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
            f"{_size(size)} ÷ ref",
        ]
    if len(sizes) > 1:
        header.append(f"p50 {_size(sizes[0])}→{_size(sizes[-1])}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        row = [name]
        for size in sizes:
            row += [*_cells(results[size].get(name)), _ratio_cell(results[size], name)]
        if len(sizes) > 1:
            row.append(_growth(results[sizes[0]].get(name), results[sizes[-1]].get(name)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def ratios(results: dict[int, dict]) -> list[str]:
    """Each scenario against its reference (the goals), and the list page's other rungs."""
    lines = []
    for size, by_name in results.items():
        for name, (reference, goal) in REFERENCES.items():
            ratio = _ratio(by_name, name)
            if ratio is None:
                lines.append(f"{name} at {_size(size)}: API / reference = n/a")
                continue
            verdict = "meets" if ratio >= goal else "below"
            lines.append(
                f"{name} at {_size(size)}: API / {reference} = {ratio:.2f} ({verdict} the goal of {goal})"
            )
        for name, floor in FLOORS.items():
            if (ratio := _ratio(by_name, name, floor)) is not None:
                lines.append(f"{name} at {_size(size)}: API / {floor} = {ratio:.2f}")
        for name, by_reference in (
            (name, stats.get("paired")) for name, stats in by_name.items() if isinstance(stats, dict)
        ):
            for reference, rounds in (by_reference or {}).items():
                spread = ", ".join(f"{ratio:.2f}" for ratio in rounds)
                lines.append(f"  {name} ÷ {reference} at {_size(size)}, round by round: {spread}")
        api = by_name.get("list 50")
        for rung in (SPEED_OF_LIGHT, WITH_FLASK):
            reference = by_name.get(rung)
            if api and api.get("rps") and reference and reference.get("rps"):
                ratio = api["rps"] / reference["rps"]
                lines.append(f"list 50 at {_size(size)}: API / {rung.removeprefix('list 50 ')} = {ratio:.2f}")
    return lines


def print_table(results: dict[int, dict], args) -> None:
    table = markdown_table(results)
    notes = ratios(results)
    setting = (
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; gunicorn {args.workers} sync workers "
        f"x {args.gunicorn_threads} thread(s), LOG_LEVEL={args.log_level}; {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    legend = (
        "SQL = data statements / all round trips (with BEGIN, COMMIT, ROLLBACK, pre-ping) per request; "
        "÷ ref = API req/s ÷ the req/s of the scenario's reference (bench/speed_of_light.py)"
    )
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
