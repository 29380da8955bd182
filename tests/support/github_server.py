"""A loopback GitHub for the forge tests: a real HTTP server on 127.0.0.1 that keeps pull requests,
issue comments and commit statuses in memory and answers the 10 operations of GitHub's OpenAPI
subset (../shared/corpora/github-rest/).

With the corpus (`GitHubServer(spec=load_spec())`), every request is validated against GitHub's
description by openapi-core (path, query, headers, body) and every response body is built from the
description's own examples and validated too: the adapter is held to GitHub's contract, not to this
server's idea of it. A request that does not validate is answered 422 and recorded in `errors`;
tests assert `errors == []`. Without the corpus (spec=None) the same server answers minimal bodies
(only the fields the adapter reads), so the adapter's behaviour is tested everywhere.

Knobs for the bad cases: `forbid` (operation ids answered 403), `rate_limit` (a queue of rate-limit
answers: ("primary", reset_seconds) or ("retry-after", seconds) or ("secondary", None)), `page_size`,
`unavailable` (that many 503s first).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT.parent / "shared" / "corpora" / "github-rest" / "openapi-subset.json"
SPEC_MISSING = (f"GitHub's OpenAPI subset is not here ({SPEC_PATH}): the contract tests need "
                "../shared/corpora/github-rest/ (the self-made-fixture tests still run)")

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/repos/([^/]+)/([^/]+)/pulls$"), "pulls/list"),
    ("POST", re.compile(r"^/repos/([^/]+)/([^/]+)/pulls$"), "pulls/create"),
    ("GET", re.compile(r"^/repos/([^/]+)/([^/]+)/pulls/(\d+)$"), "pulls/get"),
    ("GET", re.compile(r"^/repos/([^/]+)/([^/]+)/pulls/(\d+)/files$"), "pulls/list-files"),
    ("GET", re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$"), "issues/list-comments"),
    ("POST", re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$"), "issues/create-comment"),
    ("PATCH", re.compile(r"^/repos/([^/]+)/([^/]+)/issues/comments/(\d+)$"), "issues/update-comment"),
    ("POST", re.compile(r"^/repos/([^/]+)/([^/]+)/statuses/(.+)$"), "repos/create-commit-status"),
]
PATTERNS = {"pulls/list": "/repos/{owner}/{repo}/pulls", "pulls/create": "/repos/{owner}/{repo}/pulls",
            "pulls/get": "/repos/{owner}/{repo}/pulls/{pull_number}",
            "pulls/list-files": "/repos/{owner}/{repo}/pulls/{pull_number}/files",
            "issues/list-comments": "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            "issues/create-comment": "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            "issues/update-comment": "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            "repos/create-commit-status": "/repos/{owner}/{repo}/statuses/{sha}"}


def load_spec() -> dict[str, Any] | None:
    return json.loads(SPEC_PATH.read_text()) if SPEC_PATH.is_file() else None


@dataclass
class Repo:
    owner: str
    name: str
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[int, list[dict[str, str]]] = field(default_factory=dict)  # number -> [{filename, status}]
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {issue, body}
    statuses: list[dict[str, Any]] = field(default_factory=list)
    branches: set[str] = field(default_factory=lambda: {"main"})


class GitHubServer:
    def __init__(self, spec: dict[str, Any] | None = None,
                 token: str = "ghp_loopbacktoken0123456789") -> None:
        self.spec = spec
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path?query)
        self.errors: list[str] = []
        self.forbid: set[str] = set()
        self.rate_limit: list[tuple[str, float | None]] = []
        self.page_size = 100
        self.unavailable = 0  # answer this many requests 503 (GitHub's service_unavailable) first
        self.comment_events = threading.Condition()
        self._next_id = 1000
        self._lock = threading.Lock()
        self._openapi: Any = None
        if spec is not None:
            from openapi_core import OpenAPI

            self._openapi = OpenAPI.from_dict(spec)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> GitHubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- state ---------------------------------------------------------------------------------------

    def repo(self, full_name: str) -> Repo:
        owner, name = full_name.split("/")
        return self.repos.setdefault(full_name.lower(), Repo(owner, name))

    def add_pull(self, full_name: str, number: int, head: str, base: str = "main", head_sha: str = "a" * 40,
                 files: list[dict[str, str]] | None = None) -> None:
        repo = self.repo(full_name)
        repo.branches.add(head)
        repo.pulls[number] = {"number": number, "head": head, "base": base, "head_sha": head_sha,
                              "title": f"PR {number}", "body": "", "state": "open"}
        repo.files[number] = files or []

    def comments_of(self, full_name: str, number: int) -> list[str]:
        repo = self.repo(full_name)
        return [c["body"] for _, c in sorted(repo.comments.items()) if c["issue"] == number]

    def new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    # --- one request ---------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        self.requests.append((method, raw_path))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        op, match = _route(method, parts.path)
        if match is None:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        if headers.get("authorization") != f"Bearer {self.token}":
            self.errors.append(f"{method} {parts.path}: wrong or missing Authorization header")
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        if self._openapi is not None:
            problem = self._validate_request(op, method, raw_path, headers, body)
            if problem:
                self.errors.append(f"request {method} {parts.path} does not follow GitHub's description: "
                                   + problem)
                return 422, {}, {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest",
                                 "errors": [{"code": "invalid", "message": problem[:500]}]}
        if self.rate_limit:
            kind, seconds = self.rate_limit.pop(0)
            if kind == "primary":
                return 403, {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                             "x-ratelimit-reset": str(int(time.time() + (seconds or 0)))}, {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
            if kind == "retry-after":
                return 429, {"retry-after": str(int(seconds or 0))}, {
                    "message": "You have exceeded a secondary rate limit.",
                    "documentation_url": "https://docs.github.com/rest"}
            if kind == "secondary":  # a 403 naming no time: GitHub asks for at least a minute
                return 403, {}, {"message": "You have exceeded a secondary rate limit. Please wait a few "
                                            "minutes before you try again.",
                                 "documentation_url": "https://docs.github.com/rest"}
        if self.unavailable > 0:
            self.unavailable -= 1
            return 503, {}, {"code": "unavailable", "message": "Service unavailable",
                             "documentation_url": "https://docs.github.com/rest"}
        if op in self.forbid:
            return 403, {}, {"message": "Resource not accessible by integration",
                             "documentation_url": "https://docs.github.com/rest"}
        repo = self.repos.get(f"{match.group(1)}/{match.group(2)}".lower())
        if repo is None:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        payload = json.loads(body) if body else {}
        status, extra, doc = getattr(self, "_" + op.replace("/", "_").replace("-", "_"))(
            repo, match, query, payload)
        if self._openapi is not None:
            problem = self._validate_response(op, method, raw_path, headers, body, status, doc, extra)
            if problem:
                self.errors.append(f"response to {method} {parts.path} does not follow GitHub's "
                                   f"description: {problem}")
        return status, extra, doc

    def _paged(self, items: list[Any], query: dict[str, str], path: str) -> tuple[int, dict[str, str], Any]:
        per_page = min(int(query.get("per_page", "30")), self.page_size)
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            nxt = {**query, "page": str(page + 1)}
            headers["link"] = f'<{self.url}{path}?{urlencode(nxt)}>; rel="next"'
        return 200, headers, chunk

    # --- operations (state changes and response bodies) ----------------------------------------------

    def _pulls_list(self, repo: Repo, match: Any, query: dict[str, str], _: Any) -> Any:
        head = query.get("head", "")
        owner, _, branch = head.partition(":")
        found = [pr for pr in repo.pulls.values()
                 if pr["state"] == query.get("state", "open")
                 and (not head or (owner.lower() == repo.owner.lower() and pr["head"] == branch))
                 and (not query.get("base") or pr["base"] == query["base"])]
        return self._paged([self._pull_body(repo, pr, simple=True) for pr in found], query,
                           urlsplit(match.string).path)

    def _pulls_create(self, repo: Repo, match: Any, query: dict[str, str], payload: Any) -> Any:
        head = payload["head"].split(":")[-1]
        if head not in repo.branches:
            return 422, {}, {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest",
                             "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}
        for pr in repo.pulls.values():
            if pr["state"] == "open" and pr["head"] == head and pr["base"] == payload["base"]:
                return 422, {}, {"message": "Validation Failed",
                                 "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                                 "errors": [{"resource": "PullRequest", "code": "custom",
                                             "message": f"A pull request already exists for "
                                                        f"{repo.owner}:{head}."}]}
        number = max(repo.pulls, default=0) + 1
        repo.pulls[number] = {"number": number, "head": head, "base": payload["base"], "head_sha": "b" * 40,
                              "title": payload.get("title") or "", "body": payload.get("body") or "",
                              "state": "open"}
        repo.files[number] = []
        return 201, {"location": f"{self.url}/repos/{repo.owner}/{repo.name}/pulls/{number}"}, \
            self._pull_body(repo, repo.pulls[number], simple=False)

    def _pulls_get(self, repo: Repo, match: Any, query: dict[str, str], _: Any) -> Any:
        pr = repo.pulls.get(int(match.group(3)))
        if pr is None:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        return 200, {}, self._pull_body(repo, pr, simple=False)

    def _pulls_list_files(self, repo: Repo, match: Any, query: dict[str, str], _: Any) -> Any:
        number = int(match.group(3))
        if number not in repo.pulls:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        items = [self._file_body(repo, f) for f in repo.files.get(number, [])]
        return self._paged(items, query, urlsplit(match.string).path)

    def _issues_list_comments(self, repo: Repo, match: Any, query: dict[str, str], _: Any) -> Any:
        number = int(match.group(3))
        items = [self._comment_body(repo, cid, c) for cid, c in sorted(repo.comments.items())
                 if c["issue"] == number]
        return self._paged(items, query, urlsplit(match.string).path)

    def _issues_create_comment(self, repo: Repo, match: Any, query: dict[str, str], payload: Any) -> Any:
        number = int(match.group(3))
        if number not in repo.pulls:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        cid = self.new_id()
        with self.comment_events:
            repo.comments[cid] = {"issue": number, "body": payload["body"]}
            self.comment_events.notify_all()
        return 201, {"location": f"{self.url}/repos/{repo.owner}/{repo.name}/issues/comments/{cid}"}, \
            self._comment_body(repo, cid, repo.comments[cid])

    def _issues_update_comment(self, repo: Repo, match: Any, query: dict[str, str], payload: Any) -> Any:
        cid = int(match.group(3))
        if cid not in repo.comments:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        with self.comment_events:
            repo.comments[cid]["body"] = payload["body"]
            self.comment_events.notify_all()
        return 200, {}, self._comment_body(repo, cid, repo.comments[cid])

    def _repos_create_commit_status(self, repo: Repo, match: Any, query: dict[str, str], payload: Any) -> Any:
        status = {"id": self.new_id(), "sha": match.group(3), **payload}
        repo.statuses.append(status)
        return 201, {"location": f"{self.url}/repos/{repo.owner}/{repo.name}/statuses/{match.group(3)}"}, \
            self._status_body(repo, status)

    # --- bodies: the description's examples with this server's state ---------------------------------

    def _example(self, name: str) -> Any:
        assert self.spec is not None
        value = self.spec["components"]["examples"][name]["value"]
        return copy.deepcopy(value[0] if isinstance(value, list) else value)

    def _pull_body(self, repo: Repo, pr: dict[str, Any], *, simple: bool) -> dict[str, Any]:
        html = f"https://github.example/{repo.owner}/{repo.name}/pull/{pr['number']}"
        if self.spec is None:
            return {"number": pr["number"], "state": pr["state"], "title": pr["title"], "html_url": html,
                    "merged_at": pr.get("merged_at"),
                    "head": {"ref": pr["head"], "sha": pr["head_sha"]},
                    "base": {"ref": pr["base"], "sha": "0" * 40}}
        body = self._example("pull-request-simple-items" if simple else "pull-request")
        body.update(number=pr["number"], state=pr["state"], title=pr["title"], body=pr["body"], html_url=html,
                    id=pr["number"])
        body["merged_at"] = pr.get("merged_at")
        if not simple:
            body["merged"] = pr.get("merged_at") is not None
        # GitHub's own example names a requested team without the `type` its schema requires (checked
        # with openapi-schema-validator): a pull request without requested teams is valid as it is
        body["requested_teams"] = []
        body["head"].update(ref=pr["head"], sha=pr["head_sha"], label=f"{repo.owner}:{pr['head']}")
        body["base"].update(ref=pr["base"], label=f"{repo.owner}:{pr['base']}")
        return body

    def _file_body(self, repo: Repo, item: dict[str, str]) -> dict[str, Any]:
        if self.spec is None:
            return dict(item)
        body = self._example("diff-entry-items")
        body.update(item)
        if "previous_filename" not in item:
            body.pop("previous_filename", None)
        return body

    def _comment_body(self, repo: Repo, cid: int, comment: dict[str, Any]) -> dict[str, Any]:
        html = f"https://github.example/{repo.owner}/{repo.name}/pull/{comment['issue']}#issuecomment-{cid}"
        if self.spec is None:
            return {"id": cid, "body": comment["body"], "html_url": html}
        body = self._example("issue-comment")
        body.update(id=cid, body=comment["body"], html_url=html)
        return body

    def _status_body(self, repo: Repo, status: dict[str, Any]) -> dict[str, Any]:
        if self.spec is None:
            return {"id": status["id"], "state": status["state"], "context": status.get("context")}
        body = self._example("status")
        body.update(id=status["id"], state=status["state"], context=status.get("context", "default"),
                    description=status.get("description"), target_url=status.get("target_url"))
        return body

    # --- validation ------------------------------------------------------------------------------------

    def _mock_request(self, op: str, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Any:
        from openapi_core.testing import MockRequest

        parts = urlsplit(raw_path)
        args = {k: v[0] for k, v in parse_qs(parts.query).items()}
        pattern = PATTERNS[op]
        names = re.findall(r"\{(\w+)\}", pattern)
        route = next(p for m, p, o in ROUTES if o == op)
        match = route.match(parts.path)
        view_args = dict(zip(names, match.groups(), strict=True)) if match else {}
        return MockRequest("https://api.github.com", method.lower(), parts.path, path_pattern=pattern,
                           args=args, view_args=view_args, headers=headers, data=body or None,
                           content_type=headers.get("content-type", "application/json").split(";")[0])

    def _validate_request(self, op: str, method: str, raw_path: str, headers: dict[str, str], body: bytes
                          ) -> str | None:
        try:
            self._openapi.validate_request(self._mock_request(op, method, raw_path, headers, body))
        except Exception as exc:
            return _explain(exc)
        return None

    def _validate_response(self, op: str, method: str, raw_path: str, headers: dict[str, str], body: bytes,
                           status: int, doc: Any, extra: dict[str, str]) -> str | None:
        from openapi_core.testing import MockResponse

        request = self._mock_request(op, method, raw_path, headers, body)
        response = MockResponse(json.dumps(doc).encode(), status_code=status, headers=extra,
                                content_type="application/json")
        try:
            self._openapi.validate_response(request, response)
        except Exception as exc:
            return _explain(exc)
        return None


def _route(method: str, path: str) -> tuple[str, re.Match[str] | None]:
    for route_method, pattern, op in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return op, match
    return "", None


def _explain(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    while cause is not None:
        parts.append(str(cause)[:600])
        for sub in getattr(cause, "schema_errors", []) or []:
            parts.append(f"{list(sub.path)}: {sub.message}"[:300])
        cause = cause.__cause__
    return " | ".join(parts)


def _handler(server: GitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, extra, doc = server.handle(self.command, self.path, headers, body)
            except Exception as exc:  # a bug in this server: recorded, answered 500
                server.errors.append(f"server error on {self.command} {self.path}: {exc!r}")
                status, extra, doc = 500, {}, {"message": "loopback server error"}
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

    return Handler
