"""`/forge merge`: open the attempt's pull request ready for review (or mark the draft ready), and merge it when
its checks passed, with a merge method the repository allows.

"Checks passed" reads the head commit's check runs and commit statuses: any failed one refuses with their names;
any still running refuses with "try again"; all passed merges. None at all refuses ("not reported yet") unless the
server sets `bot.merge_without_checks`. A pull request opened by this very command is never merged by it: its CI
has not started yet, so the user is asked to run the command again once the checks pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from forgebot.core.models import Attempt
from forgebot.github.bot import Bot, Refused
from forgebot.github.port import CheckInfo, GitHubError, RepoInfo
from forgebot.store.bot import IssueTask

_SHOWN = 10  # check names listed in a refusal


def merge_method(repo: RepoInfo) -> str | None:
    """Squash when the repository allows it, else a merge commit, else rebase; None when it allows none."""
    allowed = {"squash": repo.allow_squash_merge, "merge": repo.allow_merge_commit, "rebase": repo.allow_rebase_merge}
    return next((method for method, ok in allowed.items() if ok), None)


def checks_refusal(checks: Sequence[CheckInfo], pull: int, *, without_checks: bool = False) -> str | None:
    """Why the checks forbid merging now, or None when they all passed (or there are none and `without_checks`)."""
    if not checks and not without_checks:
        return f"no checks reported yet on #{pull}. Try again when they pass"
    failed = [c.name for c in checks if c.state == "failure"]
    if failed:
        return f"checks failed on #{pull}: {_names(failed)}. Fix them, then `/forge merge` again"
    pending = [c.name for c in checks if c.state == "pending"]
    if pending:
        return f"checks still running on #{pull}: {_names(pending)}. Try again when they pass"
    return None


def _names(names: Sequence[str]) -> str:
    shown = ", ".join("`" + name.replace("`", "'")[:80] + "`" for name in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


async def merge(bot: Bot, link: IssueTask, attempt: Attempt, *, issue_title: str) -> None:
    """Raises Refused with the reason when it does not merge."""
    method = merge_method(await bot.github.get_repo(link.repo))
    if method is None:
        raise Refused("this repository allows no merge method (squash, merge commit or rebase)")
    pull = await bot.publisher.open_pull(link, attempt, issue_title=issue_title, draft=False)
    # The link was read before: a number it did not have yet is a pull request this call opened (or found after a
    # create that failed on an earlier try, which is just as new).
    just_opened = link.pr_number != pull.number
    if pull.merged:
        return
    if pull.state != "open":
        raise Refused(f"#{pull.number} is closed; reopen it to merge it")
    if pull.draft:
        await bot.github.mark_ready(link.repo, pull.number)  # GitHub refuses to merge a draft (405)
    if just_opened:
        raise Refused(f"opened #{pull.number}; checks have not reported yet. Run `/forge merge` again once they pass")
    checks = await bot.github.commit_checks(link.repo, pull.head_sha)
    if why := checks_refusal(checks, pull.number, without_checks=bot.behaviour.bot.merge_without_checks):
        raise Refused(why)
    try:
        await bot.github.merge_pull(link.repo, pull.number, method=method, sha=pull.head_sha or None)
    except GitHubError as error:
        raise Refused(f"GitHub would not merge #{pull.number}: {error}") from None
