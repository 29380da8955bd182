"""The GitHub forge against a real loopback HTTP server (tests/support/github_server.py).

Each test runs twice: `contract`, where the server validates every request and response against
GitHub's OpenAPI subset (../shared/corpora/github-rest/; skipped when that folder is absent), and
`fixtures`, where it answers self-made minimal bodies, so the adapter's behaviour is tested everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.forge import ForgeError, ForgeForbidden, ForgeNotFound, ForgeRateLimited, hidden_marker
from dispatcher.forge.github import GitHubForge
from tests.support.github_server import SPEC_MISSING, GitHubServer, load_spec

REPO = "octo-org/infra"
TOKEN = "ghp_loopbacktoken0123456789"


@pytest.fixture(params=["contract", "fixtures"])
def server(request: pytest.FixtureRequest) -> Iterator[GitHubServer]:
    spec = None
    if request.param == "contract":
        spec = load_spec()
        if spec is None:
            pytest.skip(SPEC_MISSING)
    with GitHubServer(spec, token=TOKEN) as github:
        github.repo(REPO)
        yield github
    assert github.errors == [], github.errors


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def forge(server: GitHubServer, **kwargs: Any) -> GitHubForge:
    return GitHubForge(REPO, TOKEN, api_url=server.url, **kwargs)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_open_then_open_again_finds_the_same_pull_request(server: GitHubServer) -> None:
    server.repo(REPO).branches.add("nightshift/fix-drift")

    async def go() -> Any:
        async with forge(server) as gh:
            assert await gh.find_pull_request("nightshift/fix-drift") is None
            first = await gh.open_pull_request("nightshift/fix-drift", "main", "Fix drift", "body")
            again = await gh.open_pull_request("nightshift/fix-drift", "main", "Fix drift", "body")
            found = await gh.find_pull_request("nightshift/fix-drift", "main")
            return first, again, found

    first, again, found = run(go())
    assert first.created and first.number == 1 and first.head_ref == "nightshift/fix-drift"
    assert not again.created and again.number == 1  # 422 "already exists" is found, not an error
    assert found is not None and found.number == 1
    assert len(server.repo(REPO).pulls) == 1


def test_a_pull_request_by_number_says_whether_and_when_it_was_merged(server: GitHubServer) -> None:
    server.add_pull(REPO, 3, "nightshift/drift-network-3")
    server.add_pull(REPO, 4, "nightshift/drift-network-4")
    server.repo(REPO).pulls[4].update(state="closed", merged_at="2026-11-29T00:30:00Z")

    async def go() -> Any:
        async with forge(server) as gh:
            return await gh.get_pull_request(3), await gh.get_pull_request(4), await gh.get_pull_request(99)

    still_open, merged, missing = run(go())
    assert (still_open.state, still_open.merged_at) == ("open", None)
    assert (merged.number, merged.head_ref, merged.state, merged.merged_at) == (
        4, "nightshift/drift-network-4", "closed", "2026-11-29T00:30:00Z")
    assert missing is None
    assert server.errors == []


def test_opening_from_a_branch_that_is_not_there_is_an_error(server: GitHubServer) -> None:
    async def go() -> None:
        async with forge(server) as gh:
            await gh.open_pull_request("no-such-branch", "main", "t", "b")

    with pytest.raises(ForgeError, match="422"):
        run(go())


def test_changed_files_follow_every_page(server: GitHubServer) -> None:
    files = [{"filename": f"roots/r{i}/main.tf", "status": "modified"} for i in range(5)]
    files.append({"filename": "new/main.tf", "status": "renamed", "previous_filename": "old/main.tf"})
    server.add_pull(REPO, 7, "feature", files=files)
    server.page_size = 2

    async def go() -> Any:
        async with forge(server) as gh:
            return await gh.list_changed_files(7)

    changed = run(go())
    assert [f.path for f in changed] == [f["filename"] for f in files]
    assert changed[-1].status == "renamed" and changed[-1].previous_path == "old/main.tf"
    assert sum(1 for method, path in server.requests if "/files" in path) == 3


def test_upsert_comment_updates_the_comment_holding_its_marker(server: GitHubServer) -> None:
    server.add_pull(REPO, 3, "feature")
    server.page_size = 2
    marker = hidden_marker("pr-review")

    async def go() -> Any:
        async with forge(server) as gh:
            await gh.upsert_comment(3, hidden_marker("someone-else"), "not ours")
            for i in range(3):  # comments by people, so ours is on the second page
                server.repo(REPO).comments[server.new_id()] = {"issue": 3, "body": f"human {i}"}
            first = await gh.upsert_comment(3, marker, "review 1")
            second = await gh.upsert_comment(3, marker, "review 2")
            return first, second

    first, second = run(go())
    assert first.created and not second.created and first.id == second.id
    bodies = server.comments_of(REPO, 3)
    assert sum(marker in body for body in bodies) == 1
    assert f"{marker}\nreview 2" in bodies and "human 0" in bodies[1]


def test_status_on_the_head_sha(server: GitHubServer) -> None:
    async def go() -> None:
        async with forge(server) as gh:
            await gh.set_status("c" * 40, "failure", "x" * 300, "nightshift/pr-review",
                                target_url="https://example.com/r/1")
            with pytest.raises(ValueError, match="not one of"):
                await gh.set_status("c" * 40, "bogus", "d", "ctx")

    run(go())
    [status] = server.repo(REPO).statuses
    assert (status["sha"], status["state"], len(status["description"])) == ("c" * 40, "failure", 140)


def test_rate_limits_are_waited_out(server: GitHubServer) -> None:
    server.add_pull(REPO, 1, "feature", files=[{"filename": "main.tf", "status": "added"}])
    server.rate_limit = [("primary", 0), ("retry-after", 7), ("secondary", None)]
    sleeps = Sleeps()

    async def go() -> Any:
        async with forge(server, sleep=sleeps) as gh:
            return await gh.list_changed_files(1)

    assert [f.path for f in run(go())] == ["main.tf"]
    assert len(sleeps.waits) == 3
    assert 0 <= sleeps.waits[0] <= 2 and sleeps.waits[1] == 7 and sleeps.waits[2] == 60


def test_server_errors_are_retried_then_reported(server: GitHubServer) -> None:
    server.add_pull(REPO, 1, "feature", files=[{"filename": "main.tf", "status": "added"}])
    server.unavailable = 2
    sleeps = Sleeps()

    async def go() -> Any:
        async with forge(server, sleep=sleeps) as gh:
            return await gh.list_changed_files(1)

    assert [f.path for f in run(go())] == ["main.tf"] and len(sleeps.waits) == 2
    server.unavailable = 10
    with pytest.raises(ForgeError, match="503"):
        run(go())
    server.unavailable = 0


def test_a_rate_limit_longer_than_the_run_may_wait_is_an_error(server: GitHubServer) -> None:
    server.add_pull(REPO, 1, "feature")
    server.rate_limit = [("primary", 3600)]
    sleeps = Sleeps()

    async def go() -> None:
        async with forge(server, sleep=sleeps, max_wait=60) as gh:
            await gh.list_changed_files(1)

    with pytest.raises(ForgeRateLimited, match="rate limit"):
        run(go())
    assert sleeps.waits == []


def test_forbidden_and_not_found_say_so_without_the_token(server: GitHubServer) -> None:
    server.add_pull(REPO, 1, "feature")
    server.forbid.add("issues/create-comment")

    async def comment() -> None:
        async with forge(server) as gh:
            await gh.upsert_comment(1, hidden_marker("x"), "body")

    with pytest.raises(ForgeForbidden) as forbidden:
        run(comment())
    assert "403" in str(forbidden.value) and TOKEN not in str(forbidden.value)

    async def gone() -> None:
        async with GitHubForge("octo-org/deleted", TOKEN, api_url=server.url) as gh:
            await gh.list_changed_files(1)

    with pytest.raises(ForgeNotFound, match="404"):
        run(gone())


def test_the_api_url_comes_from_github_api_url(server: GitHubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", server.url + "/")
    gh = GitHubForge(REPO, TOKEN)
    assert gh.api_url == server.url
    run(gh.aclose())


def test_the_validator_catches_a_request_off_the_contract() -> None:
    spec = load_spec()
    if spec is None:
        pytest.skip(SPEC_MISSING)
    with GitHubServer(spec, token=TOKEN) as github:
        github.repo(REPO)
        answer = httpx.post(f"{github.url}/repos/{REPO}/statuses/{'c' * 40}", json={"state": "bogus"},
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 422
        assert len(github.errors) == 1 and "state" in github.errors[0]


def test_a_next_page_on_another_host_is_refused() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "ghe.example"  # the token never leaves for evil.example
        return httpx.Response(200, json=[], headers={"link": '<https://evil.example/x?page=2>; rel="next"'})

    async def go() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        async with GitHubForge(REPO, TOKEN, api_url="https://ghe.example/api/v3", client=client) as gh:
            await gh.list_changed_files(1)
        await client.aclose()

    with pytest.raises(ForgeError, match="another host"):
        run(go())
