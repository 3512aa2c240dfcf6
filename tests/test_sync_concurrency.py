"""Exactly once under concurrency: a client following `next_since` while writers commit ends
with exactly the server's state.

Writer threads create, change and delete tasks and tags (tag renames and deletions re-stamp
the tasks carrying them) through their own test clients, each request a real PostgreSQL
transaction; every commit waits a random few milliseconds first, so transactions stay open,
their rows written and stamped, while the syncer reads. That is the window in which a
watermark of timestamps or of a sequence drawn at write time passes a transaction still in
flight and loses its write for good.
"""

import random
import threading
import time

import pytest
from sqlalchemy import event
from test_sync import follow

from app.extensions import db

API = "/api/v1"
TAG_NAMES = ["red", "green", "blue", "grey", "teal"]
WRITERS, OPERATIONS = 3, 24


@pytest.fixture
def slow_commits(app):
    """Every commit first sleeps 0-15 ms, the transaction still open."""
    rng = random.Random()

    def linger(_connection):
        time.sleep(rng.uniform(0, 0.015))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", linger)
    yield
    event.remove(engine, "commit", linger)


def write(client, headers, rng: random.Random, task_ids: list[int]) -> None:
    """One random write; a 404 or 409 from a race with another writer is fine."""
    choice = rng.random()
    tags = rng.sample(TAG_NAMES, rng.randint(0, 2))
    if choice < 0.3 or not task_ids:
        response = client.post(
            f"{API}/tasks", json={"title": f"t{rng.random()}", "tags": tags}, headers=headers
        )
        if response.status_code == 201:
            task_ids.append(response.get_json()["id"])
    elif choice < 0.55:
        body = {"title": f"u{rng.random()}", "tags": tags, "completed": rng.random() < 0.5}
        response = client.patch(f"{API}/tasks/{rng.choice(task_ids)}", json=body, headers=headers)
    elif choice < 0.7:
        response = client.delete(f"{API}/tasks/{rng.choice(task_ids)}", headers=headers)
    else:
        existing = client.get(f"{API}/tags", headers=headers).get_json()["items"]
        if choice < 0.8 and existing:
            name = f"{rng.choice(TAG_NAMES)}{rng.randint(0, 3)}"
            path = f"{API}/tags/{rng.choice(existing)['id']}"
            response = client.patch(path, json={"name": name}, headers=headers)
        elif choice < 0.9 and existing:
            response = client.delete(f"{API}/tags/{rng.choice(existing)['id']}", headers=headers)
        else:
            response = client.post(f"{API}/tags", json={"name": rng.choice(TAG_NAMES)}, headers=headers)
    assert response.status_code in (200, 201, 204, 404, 409), response.get_json()


def server_state(client, headers) -> dict:
    """{(type, id): representation} of every task and tag, read from their own lists."""
    state = {
        ("tag", tag["id"]): tag for tag in client.get(f"{API}/tags", headers=headers).get_json()["items"]
    }
    cursor = None
    while True:
        query = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/tasks", query_string=query, headers=headers).get_json()
        state.update({("task", task["id"]): task for task in page["items"]})
        if not (cursor := page["next_cursor"]):
            return state


@pytest.mark.slow
@pytest.mark.parametrize("run", range(5))
def test_a_client_following_next_since_ends_with_exactly_the_servers_state(app, user, slow_commits, run):
    headers, errors, task_ids = user["headers"], [], []
    writing = threading.Event()
    writing.set()

    def guarded(work):
        def target():
            try:
                work()
            except BaseException as error:  # reported below, not lost in the thread
                errors.append(error)

        return threading.Thread(target=target)

    def writer(seed: int):
        client, rng = app.test_client(), random.Random(seed)
        for _ in range(OPERATIONS):
            write(client, headers, rng, task_ids)

    copy, token = {}, [None]

    def syncer():
        client, rng = app.test_client(), random.Random(run)
        while writing.is_set():
            _, token[0] = follow(client, headers, token[0], copy, limit=rng.randint(1, 6))

    writers = [guarded(lambda seed=seed: writer(seed)) for seed in range(run * 10, run * 10 + WRITERS)]
    reader = guarded(syncer)
    for thread in [*writers, reader]:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    writing.clear()
    reader.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in [*writers, reader])

    client = app.test_client()
    follow(client, headers, token[0], copy)
    expected = server_state(client, headers)
    assert len(expected) > 5
    assert copy == expected
    # And a fresh full sync agrees with the lists too.
    assert follow(client, headers)[0] == expected
