"""Runs the repository's check commands in a finished worktree, each under its own timeout."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from forgebot.core.models import CheckResult, CheckSpec
from forgebot.engine.processes import ProcessSpec, run_process

TAIL_CHARS = 2000


async def run_checks(
    checks: Sequence[CheckSpec],
    workdir: str,
    env: Mapping[str, str],
    log_path: str | None = None,
    on_start: Callable[[int], None] | None = None,
) -> tuple[CheckResult, ...]:
    results = []
    for check in checks:
        spec = ProcessSpec(argv=check.run, cwd=workdir, env=env, timeout=check.timeout, log_path=log_path)
        try:
            outcome = await run_process(spec, on_start=on_start)
        except OSError as error:  # the check program itself is missing or not executable
            results.append(CheckResult(check.name, False, None, 0.0, f"could not start: {error}"))
            continue
        results.append(
            CheckResult(
                name=check.name,
                passed=outcome.ok,
                exit_code=outcome.exit_code,
                duration=round(outcome.duration, 3),
                output_tail=outcome.tail[-TAIL_CHARS:],
                timed_out=outcome.timed_out,
            )
        )
    return tuple(results)
