"""`make bench`: where the API's time goes, at 10,000 and at 1,000,000 tasks for one user.

For each size it starts from nothing: a database on its own PostgreSQL, `flask db upgrade`
and `flask seed`, the API under gunicorn with production settings, a bench user seeded
through the API and bulk-loaded by COPY (bench/load.py), then one wrk run per scenario.
It prints requests/s, p50 and p99 per scenario and size, the SQL statements each request
sends (counted from PostgreSQL's own statement log on a second, one-worker instance, so the
app is not instrumented), and each of list 50, get one task, me, /health and create task
against a hand-written reference of the same request (bench/speed_of_light.py), as a ratio.
`--profile` instead samples one worker with pyinstrument under a short load per scenario;
`--stages` times the list page and each of its stages in-process (bench/stages.py).
"""

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load, report, wrk
from bench.report import (
    CREATE_REFERENCE,
    FLOORS,
    GET_FLOOR,
    GET_REFERENCE,
    HEALTH_REFERENCE,
    ME_FLOOR,
    ME_REFERENCE,
    REFERENCES,
    SPEED_OF_LIGHT,
    WITH_FLASK,
    WITH_TOKEN_CHECK,
)
from bench.servers import (
    API_APPLICATION_NAME,
    ROOT,
    BenchCluster,
    Gunicorn,
    call,
    count_statements,
    environment,
    flask,
)

EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"
OTHER_USERS, OTHER_TASKS = 1000, 5
COUNTED_REQUESTS = 10
MONTH = "start=2027-03-01T00:00:00Z&end=2027-04-01T00:00:00Z"
NEW_TASK = {
    "title": "Bench task",
    "description": "made by make bench",
    "priority": "high",
    "tags": ["work", "home"],
    "due_at": "2027-01-15T09:00:00Z",
}
MISSING = "n/a (route missing)"


@dataclass
class Scenario:
    name: str
    method: str
    paths: list[str]
    body: dict | None = None
    token: str | None = None
    server: str = "api"  # "sol": the speed-of-light app (bench/speed_of_light.py)
    missing: bool = False  # seeding already found its route missing
    # A reference's statements / round trips per request, by construction (it is not counted).
    reference_sql: tuple[int, int] = (1, 1)


@dataclass
class Seeded:
    token: str
    user_id: int
    task_ids: list[int]
    recurring_id: int | None
    sync_idle: str | None = None  # a sync token with nothing after it
    sync_ten: str | None = None  # a sync token with 10 changed tasks after it


def scenarios(seeded: Seeded) -> list[Scenario]:
    token, items = seeded.token, [f"/api/v1/tasks/{i}" for i in seeded.task_ids]
    recurring = f"/api/v1/recurring-tasks/{seeded.recurring_id}/instances?{MONTH}"
    return [
        Scenario("list 50", "GET", ["/api/v1/tasks?limit=50"], token=token),
        Scenario(SPEED_OF_LIGHT, "GET", ["/"], server="sol"),
        Scenario(WITH_TOKEN_CHECK, "GET", ["/auth"], token=token, server="sol"),
        Scenario(WITH_FLASK, "GET", ["/flask"], token=token, server="sol"),
        Scenario("list tag=work", "GET", ["/api/v1/tasks?tag=work"], token=token),
        Scenario("list sort=due_at", "GET", ["/api/v1/tasks?sort=due_at"], token=token),
        Scenario("search q=invoice", "GET", ["/api/v1/tasks?q=invoice"], token=token),
        Scenario("get one task", "GET", items, token=token),
        Scenario(GET_REFERENCE, "GET", items, token=token, server="sol"),
        Scenario(
            GET_FLOOR,
            "GET",
            [f"/flask{item}" for item in items],
            token=token,
            server="sol",
            reference_sql=(1, 2),
        ),
        Scenario("recurring month", "GET", [recurring], token=token, missing=seeded.recurring_id is None),
        Scenario("me", "GET", ["/api/v1/auth/me"], token=token),
        Scenario(ME_REFERENCE, "GET", ["/api/v1/auth/me"], token=token, server="sol"),
        Scenario(ME_FLOOR, "GET", ["/flask/api/v1/auth/me"], token=token, server="sol", reference_sql=(1, 2)),
        Scenario("/health", "GET", ["/health"]),
        # Pre-ping and SELECT 1, counted as the API's /health is (no data statement).
        Scenario(HEALTH_REFERENCE, "GET", ["/health"], server="sol", reference_sql=(0, 2)),
        # Before the writing scenarios, which would add changes after these tokens.
        Scenario(
            "sync, nothing changed",
            "GET",
            [f"/api/v1/sync?since={seeded.sync_idle}"],
            token=token,
            missing=seeded.sync_idle is None,
        ),
        Scenario(
            "sync after 10 changes",
            "GET",
            [f"/api/v1/sync?since={seeded.sync_ten}"],
            token=token,
            missing=seeded.sync_ten is None,
        ),
        Scenario("create task", "POST", ["/api/v1/tasks"], body=NEW_TASK, token=token),
        Scenario(CREATE_REFERENCE, "POST", ["/api/v1/tasks"], body=NEW_TASK, token=token, server="sol"),
        Scenario("complete task", "PATCH", items, body={"completed": True}, token=token),
        Scenario("login", "POST", ["/api/v1/auth/login"], body={"email": EMAIL, "password": PASSWORD}),
    ]


def seed(port: int, url: str, size: int) -> Seeded:
    """The bench user and a few objects through the API, then `size` tasks in bulk."""
    credentials = {"email": EMAIL, "password": PASSWORD}
    status, answer = call(port, "POST", "/api/v1/auth/register", credentials)
    if status != 201:
        sys.exit(f"error: registering the bench user answered {status}: {answer}")
    token = call(port, "POST", "/api/v1/auth/login", credentials)[1]["access_token"]
    user_id = call(port, "GET", "/api/v1/auth/me", token=token)[1]["id"]
    for name in load.TAG_NAMES[:3]:
        call(port, "POST", "/api/v1/tags", {"name": name, "color": "#3366cc"}, token)
    made = sum(call(port, "POST", "/api/v1/tasks", NEW_TASK, token)[0] == 201 for _ in range(3))
    status, recurring = call(
        port,
        "POST",
        "/api/v1/recurring-tasks",
        {"title": "Stand-up", "rrule": "FREQ=DAILY", "dtstart": "2027-01-01T09:00:00", "timezone": "UTC"},
        token,
    )
    if status == 201:  # the month's first read stores its instances, a change: before the sync
        call(port, "GET", f"/api/v1/recurring-tasks/{recurring['id']}/instances?{MONTH}", token=token)
    synced = full_sync(port, token)
    started = time.monotonic()
    connection = psycopg2.connect(url, application_name="bench-loader")
    try:
        with load.indexes_dropped(connection):
            ids = load.load_tasks(connection, user_id, size - made, load.ensure_tags(connection, user_id))
            load.load_other_users(connection, OTHER_USERS, OTHER_TASKS)
        connection.commit()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        connection.close()
    print(
        f"  loaded {size:,} tasks (+{OTHER_USERS * OTHER_TASKS:,} of {OTHER_USERS:,} other users) "
        f"by COPY, vacuumed and analyzed in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    sample = random.Random(7).sample(ids, min(1000, len(ids)))
    sync_idle, sync_ten = sync_after_changes(port, token, synced, sample[:10])
    return Seeded(token, user_id, sample, recurring["id"] if status == 201 else None, sync_idle, sync_ten)


def full_sync(port: int, token: str) -> str | None:
    """A client's full sync (pages of 1,000); its last `next_since`, or None when /sync is missing.

    Run before the bulk load: COPY bypasses the change log (its rows keep stamp 0, older than
    the token), so the token then stands for a client that holds every task, without paging
    through a million of them first."""
    since = None
    while True:
        query = "limit=1000" + (f"&since={since}" if since else "")
        status, answer = call(port, "GET", f"/api/v1/sync?{query}", token=token)
        if status != 200:
            return None
        since = answer["next_since"]
        if not answer["has_more"]:
            return since


def sync_after_changes(port: int, token: str, since: str | None, task_ids: list[int]):
    """Change 10 tasks after `since`; (a token with nothing after it, `since`)."""
    if since is None:
        return None, None
    for task_id in task_ids:
        call(port, "PATCH", f"/api/v1/tasks/{task_id}", {"title": "changed for sync"}, token)
    status, answer = call(port, "GET", f"/api/v1/sync?since={since}", token=token)
    assert status == 200 and len(answer["changes"]) == len(task_ids), answer
    return answer["next_since"], since


class Bench:
    def __init__(self, args, cluster: BenchCluster, work: Path):
        self.args, self.cluster, self.work = args, cluster, work

    def admin(self, sql: str) -> None:
        connection = psycopg2.connect(self.cluster.url(), application_name="bench")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def connections(self, database: str) -> int:
        """The API's open connections to `database`: a sync worker's pool keeps at most one."""
        connection = psycopg2.connect(self.cluster.url(), application_name="bench")
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                    (database, API_APPLICATION_NAME),
                )
                return cursor.fetchone()[0]
        finally:
            connection.close()

    def env(self, database: str, **overrides: str) -> dict:
        return environment(
            DATABASE_URL=self.cluster.url(database),
            APP_ENV="production",
            SECRET_KEY=secrets.token_hex(32),
            JWT_SECRET_KEY=secrets.token_hex(32),
            JWT_ACCESS_TTL="7200",  # outlives the whole run
            WEB_CONCURRENCY=str(self.args.workers),
            GUNICORN_THREADS=str(self.args.gunicorn_threads),
            # The limiter stays on, as in production (it counts on the auth routes only), with
            # an auth limit that the login scenario cannot reach.
            RATELIMIT_AUTH="100000000 per minute",
            LOG_LEVEL=self.args.log_level,
            # Counted as in production (app/metrics.py), whatever the developer's shell says.
            METRICS_ENABLED="true",
            **overrides,
        )

    def size(self, size: int, with_default_logging: bool) -> dict:
        database = f"bench_{size}"
        print(f"\n== {size:,} tasks ==", flush=True)
        self.admin(f'DROP DATABASE IF EXISTS "{database}"')
        self.admin(f'CREATE DATABASE "{database}"')
        env = self.env(database)
        flask(env, "db", "upgrade")
        flask(env, "seed")
        started: list[Gunicorn] = []
        try:
            api = self._start(started, "wsgi:app", env, f"{database}-api")
            counter = self._start(
                started,
                "wsgi:app",
                {**env, "WEB_CONCURRENCY": "1", "PGOPTIONS": "-c log_statement=all"},
                f"{database}-counter",
            )
            seeded = seed(api.port, self.cluster.url(database), size)
            if self.args.profile:
                return self.profile(env, seeded, started)
            if self.args.stages:
                return self.stages(env, seeded)
            sol = self._start(
                started,
                "speed_of_light:app",
                {**env, "BENCH_USER_ID": str(seeded.user_id)},
                f"{database}-sol",
                cwd=ROOT / "bench",
                ready_path="/",
            )
            ports = {"api": api.port, "sol": sol.port}
            results = {s.name: self.measure(s, ports, counter.port) for s in scenarios(seeded)}
            self.paired_rounds(scenarios(seeded), ports, results)
            held = self.connections(database)
            print(
                f"  PostgreSQL connections the API holds: {held} ({self.args.workers} workers + 1 counting)"
            )
            results["PostgreSQL connections held"] = {
                "na": f"{held} for {self.args.workers} workers + 1 counting worker"
            }
            if with_default_logging:
                results.update(self.default_logging(env, seeded, started, counter.port, database))
            return results
        finally:
            for server in reversed(started):
                server.stop()
            if not self.args.keep:
                self.admin(f'DROP DATABASE IF EXISTS "{database}"')

    def _start(self, started: list, module: str, env: dict, name: str, **kwargs) -> Gunicorn:
        server = Gunicorn(module, env, self.work / f"{name}.log", **kwargs)
        started.append(server)
        return server

    def measure(self, scenario: Scenario, ports: dict, counter_port: int) -> dict:
        if scenario.missing:
            return {"na": MISSING}
        port = ports[scenario.server]
        status, _ = call(port, scenario.method, scenario.paths[0], scenario.body, scenario.token)
        if status in (404, 405):
            return {"na": MISSING}
        if status >= 300:
            return {"na": f"error: answered {status}"}
        script = self.work / f"{scenario.name.replace(' ', '_').replace('=', '-')}.lua"
        body = json.dumps(scenario.body) if scenario.body is not None else None
        wrk.write_script(script, scenario.method, scenario.paths, body, scenario.token)
        if not sys.stdout.isatty():
            print(f"  {scenario.name} ...", flush=True)
        a = self.args
        stats = wrk.run(
            f"http://127.0.0.1:{port}", script, a.duration, a.connections, a.threads, scenario.name
        )
        if scenario.server == "api":
            stats["queries"], stats["round_trips"] = self.count(scenario, counter_port)
        else:
            stats["queries"], stats["round_trips"] = scenario.reference_sql
        return stats

    def paired_rounds(self, all_scenarios: list[Scenario], ports: dict, results: dict) -> None:
        """Each goal's ratio again, in `--rounds` rounds of the API and its reference back to back
        (`--round-duration` s each), into results[name]["paired"][reference]: on a shared machine
        the speed drifts by tens of percent within minutes, which a ratio of two runs minutes
        apart takes for a difference; the report gives the median of the rounds."""
        if self.args.rounds < 1:
            return
        by_name = {scenario.name: scenario for scenario in all_scenarios}
        pairs = [(name, reference) for name, (reference, _goal) in REFERENCES.items()]
        pairs += list(FLOORS.items())
        a = self.args
        for name, reference in pairs:
            api_stats, reference_stats = results.get(name, {}), results.get(reference, {})
            if "rps" not in api_stats or "rps" not in reference_stats:
                continue
            rounds = []
            for _ in range(a.rounds):
                rps = []
                for scenario in (by_name[name], by_name[reference]):
                    script = self.work / "paired.lua"
                    body = json.dumps(scenario.body) if scenario.body is not None else None
                    wrk.write_script(script, scenario.method, scenario.paths, body, scenario.token)
                    url = f"http://127.0.0.1:{ports[scenario.server]}"
                    stats = wrk.run(url, script, a.round_duration, a.connections, a.threads, scenario.name)
                    rps.append(stats["rps"])
                rounds.append(rps[0] / rps[1] if rps[1] else 0.0)
            api_stats.setdefault("paired", {})[reference] = rounds
            if not sys.stdout.isatty():
                print(f"  {name} ÷ {reference}: {', '.join(f'{ratio:.2f}' for ratio in rounds)}", flush=True)

    def count(self, scenario: Scenario, port: int) -> tuple[float, float]:
        """Statements per request, from PostgreSQL's log of the one-worker counting instance."""
        call(port, scenario.method, scenario.paths[0], scenario.body, scenario.token)  # connect, warm up
        offset = self.cluster.log.stat().st_size
        for i in range(COUNTED_REQUESTS):
            path = scenario.paths[(i + 1) % len(scenario.paths)]
            call(port, scenario.method, path, scenario.body, scenario.token)
        queries, trips = count_statements(self.cluster.log, offset)
        return queries / COUNTED_REQUESTS, trips / COUNTED_REQUESTS

    def default_logging(self, env: dict, seeded: Seeded, started: list, counter_port: int, database: str):
        """The two cheapest reads again with the default LOG_LEVEL=INFO (one access line per request)."""
        verbose = self._start(started, "wsgi:app", {**env, "LOG_LEVEL": "INFO"}, f"{database}-api-info")
        chosen = [s for s in scenarios(seeded) if s.name in ("list 50", "me")]
        return {
            f"{s.name} (LOG_LEVEL=INFO)": self.measure(s, {"api": verbose.port}, counter_port) for s in chosen
        }

    def stages(self, env: dict, seeded: Seeded) -> dict:
        command = [sys.executable, str(ROOT / "bench" / "stages.py"), "--token", seeded.token]
        command += ["--user-id", str(seeded.user_id)]
        print("  timing the list page's stages in-process ...", flush=True)
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        if result.returncode:
            sys.exit(f"error: bench/stages.py failed:\n{result.stderr}")
        return json.loads(result.stdout)

    def profile(self, env: dict, seeded: Seeded, started: list) -> dict:
        server = self._start(started, "bench.profile_app:app", {**env, "WEB_CONCURRENCY": "1"}, "profile")
        shares = {}
        for scenario in scenarios(seeded):
            if scenario.server != "api" or scenario.missing:
                continue
            status, _ = call(server.port, scenario.method, scenario.paths[0], scenario.body, scenario.token)
            if status >= 300:
                shares[scenario.name] = {"na": MISSING if status in (404, 405) else f"error {status}"}
                continue
            script = wrk.write_script(
                self.work / "profile.lua",
                scenario.method,
                scenario.paths,
                json.dumps(scenario.body) if scenario.body is not None else None,
                scenario.token,
            )
            call(server.port, "GET", "/__profile__/start")
            wrk.run(
                f"http://127.0.0.1:{server.port}", script, self.args.profile_duration, 2, 1, scenario.name
            )
            slug = scenario.name.replace(" ", "-").replace("=", "-")
            shares[scenario.name] = call(server.port, "GET", f"/__profile__/stop?name={slug}")[1]
        return shares


def arguments(argv=None):
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="tasks of the bench user, comma-separated")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per scenario")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--rounds", type=int, default=3, help="paired rounds of each goal's API and reference (0: none)"
    )
    parser.add_argument("--round-duration", type=int, default=4, help="seconds of load per paired run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2 * cores, help="gunicorn workers (2 x cores)")
    parser.add_argument("--gunicorn-threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--log-level", default="WARNING", help="the API's LOG_LEVEL while measured")
    parser.add_argument("--no-default-logging", action="store_true", help="skip the LOG_LEVEL=INFO rows")
    parser.add_argument("--profile", action="store_true", help="profile one worker instead (first size)")
    parser.add_argument(
        "--profile-duration", type=int, default=5, help="seconds of load per profiled scenario"
    )
    parser.add_argument("--stages", action="store_true", help="time the list page's stages (first size)")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the temp dir")
    args = parser.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = arguments(argv)
    wrk.require_wrk()
    work = Path(tempfile.mkdtemp(prefix="todo-bench-"))
    cluster = BenchCluster(work / "pg").init()
    cluster.start()
    print(
        f"PostgreSQL on 127.0.0.1:{cluster.port}, work dir {work}; {args.workers} gunicorn workers, "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s",
        flush=True,
    )
    try:
        bench = Bench(args, cluster, work)
        sizes = args.sizes[:1] if args.profile or args.stages else args.sizes
        results = {
            size: bench.size(size, i == 0 and not args.no_default_logging) for i, size in enumerate(sizes)
        }
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.profile:
        report.print_profile(results[sizes[0]])
    elif args.stages:
        report.print_stages(results[sizes[0]])
    else:
        report.print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
