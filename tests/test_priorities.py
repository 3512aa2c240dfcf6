"""GET /api/v1/priorities: the four levels from the priorities table, lowest first."""


def test_priorities_are_listed_by_level(client, user):
    response = client.get("/api/v1/priorities", headers=user["headers"])
    assert response.status_code == 200
    assert response.get_json() == {
        "items": [
            {"name": "low", "label": "Low", "level": 1},
            {"name": "medium", "label": "Medium", "level": 2},
            {"name": "high", "label": "High", "level": 3},
            {"name": "urgent", "label": "Urgent", "level": 4},
        ]
    }


def test_priorities_need_a_token(client):
    response = client.get("/api/v1/priorities")
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
