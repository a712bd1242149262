"""A stateful fake of the GitHub REST endpoints forgebot uses, served over real HTTP for PyGithub.

    async with FakeGitHub() as gh:        # on the running loop; `with FakeGitHub() as gh:` or the `fake_github`
        gh.add_repo("o/r")                # fixture serve from a background thread; prefix="/api/v3" mounts like GHES
        gh.add_issue("o/r", "Add auth", "body", user="alice")
        gh.set_permission("o/r", "alice", "write")
        client = PyGithubClient(api_url=gh.url, token=gh.token, write_interval=0)
        ...
        assert gh.actions == ["o/r#1: comment 'Working on it'"]

Seed: `add_repo(name, default_branch=, private=, clone_url=, branches=)`, `add_issue`, `add_comment`, `add_pull`
(then `gh.pull(repo, n).mergeable = False` for a 405 on merge), `add_branch`, `set_file(repo, path, text, ref=)`,
`set_permission(repo, user, role)`, `add_token(token, login)`, checks on a commit: `add_check(repo, ref, name,
conclusion, status=)` (check runs) and `set_status(repo, ref, context, state)` (commit statuses), merge methods:
`gh.repos[name].allow_squash_merge = False` (and `allow_merge_commit`, `allow_rebase_merge`);
App auth: `add_app(app_id, public_key_pem)` + `install(installation_id, *repos)`, `token_lifetime`,
`revoke_token`. A repository whose `clone_url` is a local git repository also serves that repository's branches
and files (and DELETE of a ref deletes it there).
Read back: `gh.repos["o/r"]` (issues, comments, branches, labels, permissions), `gh.tokens`, `gh.token_requests`,
`gh.jwts` (verified JWT claims), `gh.errors` (tracebacks of the fake's own bugs, answered with 500).
Logs: `gh.requests` (dicts: method, path below the API root with query, json, status, time, auth), `requests_to(method,
path_regex)`, `request_log()` (JSON lines for validate_requests.py; set FAKE_GITHUB_REQUEST_LOG=file to collect every
fake's log), `gh.actions` (one short deterministic line per state change, for golden files), `reset()`.
Merging refuses like GitHub: 405 "Pull Request is still a draft", 405 "Squash merges are not allowed on this
repository."; GraphQL (`POST /graphql`) knows only markPullRequestReadyForReview. `GET /user` names the token's user.
Faults: `fail(method, path_regex, status, times=1, headers=, body=, after=False)` (`after=True`: the change lands,
then the fault answers), `rate_limit(method, path_regex, status=403, reset_in=|retry_after=)`,
`slow(method, path_regex, seconds, times=None)`. Paths match with re.search, below the API root, without the query.
"""

from tests.fake_github.handlers import ApiError, Principal
from tests.fake_github.server import FakeGitHub, Fault, Slow, run_in_thread
from tests.fake_github.state import (
    DEFAULT_LOGIN,
    DEFAULT_TOKEN,
    REACTIONS,
    ROLES,
    App,
    CheckRun,
    Comment,
    GitHubState,
    Installation,
    Issue,
    Pull,
    Reaction,
    Repo,
    Token,
    short,
)

__all__ = [
    "DEFAULT_LOGIN",
    "DEFAULT_TOKEN",
    "REACTIONS",
    "ROLES",
    "ApiError",
    "App",
    "CheckRun",
    "Comment",
    "FakeGitHub",
    "Fault",
    "GitHubState",
    "Installation",
    "Issue",
    "Principal",
    "Pull",
    "Reaction",
    "Repo",
    "Slow",
    "Token",
    "run_in_thread",
    "short",
]
