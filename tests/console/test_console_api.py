"""The console's routes: static files are public, its one JSON endpoint is behind the token."""

from __future__ import annotations

from typing import Any


def test_static_files_need_no_token(client: Any) -> None:
    page = client.get("/console/static/index.html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="login"' in page.text
    script = client.get("/console/static/merkle.js")
    assert script.status_code == 200
    assert "crypto.subtle.digest" in script.text


def test_static_refuses_paths_outside_its_directory(client: Any) -> None:
    # A literal "../" is normalised away by the client (the path then needs a token: 401); encoded dots reach us.
    assert client.get("/console/static/../console.py").status_code == 401
    for path in ("/console/static/%2e%2e/console.py", "/console/static/..%2fconsole.py", "/console/static/nothing.js"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "def whoami" not in answer.text


def test_whoami_needs_a_token(client: Any) -> None:
    assert client.get("/console/api/whoami").status_code == 401


def test_whoami_names_the_party_and_its_bilaterals(client: Any, buyer_headers: dict[str, str]) -> None:
    answer = client.get("/console/api/whoami", headers=buyer_headers)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["partyId"], body["role"]) == ("BUYER-1", "buyer")
    assert [(b["buyerId"], b["sellerId"]) for b in body["bilaterals"]] == [("BUYER-1", "SELLER-1")]
