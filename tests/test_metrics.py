"""GET /metrics in one process (each app counts in a registry of its own): what an operator scrapes."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from config import TestConfig

from conftest import assert_problem, bearer, login, register
from pg_cluster import free_port

TASK_ROUTE = "/api/v1/tasks/<id:task_id>"


def scrape(client) -> dict:
    """{(sample name, frozenset of labels): value} from one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_counted(samples: dict, route: str, status: int, method: str = "GET") -> float:
    return value(samples, "http_requests_total", route=route, method=method, status=str(status))


@pytest.fixture
def fresh_app(database_url):
    """An app of its own, so that no other test's requests are in its counts."""
    return create_app(TestConfig)


def test_requests_are_counted_by_route_template_method_and_status(fresh_app):
    client = fresh_app.test_client()
    register(client)
    headers = bearer(login(client)["access_token"])
    before = scrape(client)
    for _ in range(5):
        assert_problem(client.get("/api/v1/tasks/12345", headers=headers), 404)
    assert_problem(client.get("/api/v1/tasks/777", headers=headers), 404)
    after = scrape(client)
    assert requests_counted(after, TASK_ROUTE, 404) - requests_counted(before, TASK_ROUTE, 404) == 6
    latency = ("http_request_duration_seconds_count", frozenset({("route", TASK_ROUTE), ("method", "GET")}))
    assert after[latency] == 6
    assert not [key for key in after if any("12345" in v or "777" in v for _, v in key[1])]


def test_unmatched_paths_and_unusual_methods_share_fixed_labels(fresh_app):
    client = fresh_app.test_client()
    for path in ("/nowhere", "/api/v1/whatever/1", "/also/nowhere"):
        assert_problem(client.get(path), 404)
    client.open("/health", method="BREW")
    samples = scrape(client)
    assert requests_counted(samples, "unmatched", 404) == 3
    assert requests_counted(samples, "unmatched", 405, method="other") == 1
    assert not [key for key in samples if any("nowhere" in v or v == "BREW" for _, v in key[1])]


def test_scrapes_do_not_count_themselves(fresh_app):
    client = fresh_app.test_client()
    client.get("/health")
    first, second = scrape(client), scrape(client)
    request_samples = {k: v for k, v in first.items() if k[0].startswith(("http_", "db_pool_"))}
    assert request_samples == {k: v for k, v in second.items() if k[0].startswith(("http_", "db_pool_"))}
    assert not [key for key in first if ("route", "/metrics") in key[1]]


def test_latency_histogram_has_millisecond_buckets(fresh_app):
    client = fresh_app.test_client()
    client.get("/health")
    samples = scrape(client)
    bounds = {
        dict(labels)["le"]
        for name, labels in samples
        if name == "http_request_duration_seconds_bucket" and ("route", "/health") in labels
    }
    assert {"0.001", "0.005", "0.01", "0.1", "+Inf"} <= bounds


def test_an_unexpected_error_is_counted_as_a_500(database_url):
    app = create_app(TestConfig)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # behave as in production, not as a test app

    @app.get("/__boom/<int:n>")
    def boom(n):
        raise RuntimeError("boom")

    client = app.test_client()
    assert_problem(client.get("/__boom/1"), 500)
    assert_problem(client.get("/__boom/2"), 500)
    assert requests_counted(scrape(client), "/__boom/<int:n>", 500) == 2


def test_pool_checkouts_and_waits_move_with_requests(fresh_app):
    client = fresh_app.test_client()
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    after = scrape(client)
    assert value(after, "db_pool_checkouts_total") - value(before, "db_pool_checkouts_total") == 3
    waits = "db_pool_checkout_wait_seconds_count"
    assert value(after, waits) - value(before, waits) == 3
    assert value(after, "db_pool_checkout_wait_seconds_sum") > value(
        before, "db_pool_checkout_wait_seconds_sum"
    )
    assert value(after, "db_pool_connections_in_use") == 0  # all returned once answered


def test_a_database_outage_counts_503s_and_failed_connections(monkeypatch, database_url):
    monkeypatch.setenv("TEST_DATABASE_URL", f"postgresql://u:p@127.0.0.1:{free_port()}/db")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    client = create_app(TestConfig).test_client()
    assert client.get("/health").status_code == 503
    login = client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever1"})
    assert_problem(login, 503)
    samples = scrape(client)
    assert requests_counted(samples, "/health", 503) == 1
    assert requests_counted(samples, "/api/v1/auth/login", 503, method="POST") == 1
    # The pool's pre-ping may retry once: at least one failure per request that met the outage.
    assert value(samples, "db_pool_connection_failures_total", kind="connect") >= 2
    assert value(samples, "db_pool_connections_in_use") == 0


def test_process_metrics_are_exposed(fresh_app):
    samples = scrape(fresh_app.test_client())
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "process_cpu_seconds_total") > 0


def test_metrics_take_no_token_ignore_query_strings_and_stay_out_of_the_openapi_document(client):
    assert client.get("/metrics?format=whatever").status_code == 200
    assert "/metrics" not in client.get("/openapi.json").get_json()["paths"]


def test_metrics_disabled_is_a_404(monkeypatch, database_url):
    monkeypatch.setenv("METRICS_ENABLED", "false")
    client = create_app(TestConfig).test_client()
    assert_problem(client.get("/metrics"), 404)
    assert client.get("/health").status_code == 200
