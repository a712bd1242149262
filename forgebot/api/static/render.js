// forgebot dashboard, rendering: task cards, attempt rows and comparisons built from the API's JSON.
// Pure DOM building: no fetches, no state of its own; dashboard.js passes in what it knows (a "view").
// Everything is built with createElement/textContent: nothing from the server is ever parsed as HTML.
"use strict";

(() => {
  const ACTIVE = new Set(["preparing", "running", "checking"]);
  const FINISHED_TASK = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
  const COLUMNS = ["#", "Agent", "Status", "Elapsed", "Diff", "Checks", "Tokens", "Cost", "Branch", ""];

  // ---- building DOM safely ------------------------------------------------------------------------

  function safeUrl(value) {
    try {
      const url = new URL(String(value), window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "href") {
        const url = safeUrl(value);
        if (url) node.href = url;
      } else if (key === "data") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // ---- formatting ---------------------------------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  }

  // `skew`: the server's clock minus ours, in seconds.
  function ago(epoch, skew) {
    const s = Math.max(0, Date.now() / 1000 + skew - epoch);
    if (s < 10) return "just now";
    if (s < 60) return `${Math.floor(s)} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function count(n) {
    if (n === null || n === undefined) return "—";
    return n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
  }

  function money(usd) {
    if (usd === null || usd === undefined) return "—";
    return usd < 0.01 && usd > 0 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
  }

  const label = (status) => String(status).replace(/_/g, " ");

  function badge(status) {
    return el("span", { class: `badge s-${status}`, text: label(status) });
  }

  function timeAgo(epoch, skew) {
    if (!epoch) return "—";
    return el("time", {
      class: "ago",
      datetime: new Date(epoch * 1000).toISOString(),
      title: new Date(epoch * 1000).toLocaleString(),
      data: { epoch: String(epoch) },
      text: ago(epoch, skew),
    });
  }

  // ---- a task -------------------------------------------------------------------------------------------

  function links(task) {
    const gh = task.github;
    if (!gh) return [el("span", { class: "repo", title: task.repo, text: task.repo })];
    const parts = [el("a", { href: gh.issue_url, class: "issue", rel: "noopener", text: `${gh.repo}#${gh.issue}` })];
    if (gh.pr_url) {
      const prState = gh.pr_state ? ` (${gh.pr_state})` : "";
      parts.push(el("a", { href: gh.pr_url, class: "pr", rel: "noopener", text: `PR #${gh.pr}${prState}` }));
    }
    return parts;
  }

  function taskHeader(task, view) {
    const running = !FINISHED_TASK.has(task.status) && task.status !== "empty";
    return el(
      "header",
      {},
      el(
        "h2",
        {},
        el("span", { class: "task-id", text: `#${task.id}` }),
        " ",
        el("span", { class: "title", text: task.title }),
      ),
      badge(task.status),
      running
        ? el("button", {
            type: "button",
            class: "cancel-task",
            text: "Cancel task",
            onclick: () => view.cancel(`tasks/${task.id}/cancel`, `task #${task.id}`),
          })
        : null,
    );
  }

  function taskMeta(task, view) {
    return el(
      "div",
      { class: "meta" },
      ...links(task).flatMap((part) => [part, " · "]),
      `base ${task.base_branch}`,
      " · ",
      `${task.strategy}`,
      " · created ",
      timeAgo(task.created_at, view.skew),
    );
  }

  function attemptsTable(task, view, winner) {
    const rows = task.attempts.flatMap((attempt) => attemptRows(task, attempt, attempt.id === winner, view));
    return el(
      "table",
      { class: "attempts" },
      el("thead", {}, el("tr", {}, COLUMNS.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows),
    );
  }

  // view: {comparisons, openLogs, logs, skew, cancel(path, what), toggleLog(attemptId)}
  function taskCard(task, view) {
    const comparison = view.comparisons.get(task.id);
    const winner = comparison && comparison.winner ? comparison.winner.attempt_id : null;
    return el(
      "article",
      { class: `task t-${task.status}`, id: `task-${task.id}`, data: { id: String(task.id), status: task.status } },
      taskHeader(task, view),
      taskMeta(task, view),
      task.attempts.length ? attemptsTable(task, view, winner) : el("p", { class: "muted", text: "No attempts yet." }),
      comparison ? comparisonBlock(comparison) : null,
    );
  }

  // ---- an attempt's row, cell by cell ------------------------------------------------------------------

  function agentCell(attempt, isWinner) {
    return el(
      "td",
      { class: "agent" },
      isWinner ? el("span", { class: "star", title: "winner", text: "★ " }) : null,
      el("strong", { text: attempt.agent }),
      attempt.model ? el("div", { class: "muted small", text: attempt.model }) : null,
    );
  }

  function statusCell(attempt) {
    return el(
      "td",
      { class: "status" },
      badge(attempt.status),
      ACTIVE.has(attempt.status) && attempt.progress ? el("div", { class: "progress", text: attempt.progress }) : null,
      attempt.error ? el("div", { class: "error", text: attempt.error }) : null,
    );
  }

  // The elapsed time ticks on locally from when the JSON arrived (attempt._seen); dashboard.js updates it.
  function elapsedCell(attempt) {
    return el("td", {
      class: "elapsed num",
      data: {
        base: attempt.elapsed === null ? "" : String(attempt.elapsed),
        seen: String(attempt._seen || performance.now()),
        running: ACTIVE.has(attempt.status) && attempt.started_at ? "1" : "",
      },
      text: duration(attempt.elapsed),
    });
  }

  function diffCell(diff) {
    if (!diff.files) return el("td", { class: "diff num muted", text: "—" });
    return el(
      "td",
      { class: "diff num" },
      `${diff.files} file${diff.files === 1 ? "" : "s"} `,
      el("span", { class: "plus", text: `+${diff.insertions}` }),
      " ",
      el("span", { class: "minus", text: `−${diff.deletions}` }),
    );
  }

  function checksCell(checks) {
    const marks = checks.length
      ? checks.map((c) =>
          el("span", {
            class: `check ${c.passed ? "pass" : "fail"}`,
            title: c.timed_out ? "timed out" : `exit ${c.exit_code}`,
            text: `${c.passed ? "✓" : "✗"} ${c.name}`,
          }),
        )
      : [el("span", { class: "muted", text: "—" })];
    return el("td", { class: "checks" }, marks);
  }

  function tokensCell(usage) {
    const tokens = usage.tokens_in || usage.tokens_out ? `${count(usage.tokens_in)} / ${count(usage.tokens_out)}` : "—";
    return el("td", { class: "num", text: tokens });
  }

  function costCell(usage) {
    return el("td", { class: "num cost", text: money(usage.cost_usd) });
  }

  function branchCell(task, attempt) {
    const tree = task.github && task.github.tree_url;
    const code = el("code", { text: attempt.branch });
    const url = tree ? tree + attempt.branch.split("/").map(encodeURIComponent).join("/") : null;
    return el("td", { class: "branch" }, url ? el("a", { href: url, rel: "noopener" }, code) : code);
  }

  function actionsCell(attempt, open, view) {
    const cancellable = attempt.status === "queued" || ACTIVE.has(attempt.status);
    return el(
      "td",
      { class: "actions" },
      el("button", {
        type: "button",
        class: "log-toggle",
        "aria-expanded": open ? "true" : "false",
        text: open ? "Hide log" : "Log",
        onclick: () => view.toggleLog(attempt.id),
      }),
      cancellable
        ? el("button", {
            type: "button",
            class: "cancel-attempt",
            text: "Cancel",
            onclick: () => view.cancel(`attempts/${attempt.id}/cancel`, `attempt #${attempt.id}`),
          })
        : null,
    );
  }

  // log: {text, error}, or undefined while it loads
  function logRow(attempt, log) {
    const body = !log
      ? el("p", { class: "muted", text: "Loading log…" })
      : log.error
        ? el("p", { class: "error", text: `Could not load the log: ${log.error}` })
        : el("pre", { class: "log", text: log.text || "(no output yet)" });
    return el("tr", { class: "log-row", id: `log-${attempt.id}` }, el("td", { colspan: String(COLUMNS.length) }, body));
  }

  function attemptRows(task, attempt, isWinner, view) {
    const open = view.openLogs.has(attempt.id);
    const row = el(
      "tr",
      {
        class: `attempt a-${attempt.status}${isWinner ? " winner" : ""}`,
        id: `attempt-${attempt.id}`,
        data: { status: attempt.status },
      },
      el("td", { class: "num muted", text: `#${attempt.id}` }),
      agentCell(attempt, isWinner),
      statusCell(attempt),
      elapsedCell(attempt),
      diffCell(attempt.diff),
      checksCell(attempt.checks),
      tokensCell(attempt.usage),
      costCell(attempt.usage),
      branchCell(task, attempt),
      actionsCell(attempt, open, view),
    );
    return open ? [row, logRow(attempt, view.logs.get(attempt.id))] : [row];
  }

  // ---- the comparison --------------------------------------------------------------------------------------

  function comparisonBlock(comparison) {
    const w = comparison.winner;
    const headline = w
      ? el(
          "p",
          { class: "winner-line" },
          "Winner: ",
          el("strong", { class: "winner-name", text: w.agent }),
          ` (attempt #${w.attempt_id}) · quality ${w.quality.toFixed(2)}`,
        )
      : el("p", { class: "winner-line", text: "No winner" });
    const figures = [];
    if (comparison.total_cost !== null) figures.push(`total ${money(comparison.total_cost)}${comparison.cost_complete ? "" : "+"}`);
    if (comparison.wall_time !== null) figures.push(`wall ${duration(comparison.wall_time)}`);
    if (comparison.speedup) figures.push(`${comparison.speedup.toFixed(1)}× parallel speed-up`);
    const ranking = el(
      "ol",
      { class: "ranking" },
      comparison.ranking.map((r) =>
        el(
          "li",
          { class: r.eligible ? "" : "ineligible" },
          el("strong", { text: r.agent }),
          ` — quality ${r.quality.toFixed(2)}`,
          r.reasons.length ? ` — ${r.reasons.join("; ")}` : "",
        ),
      ),
    );
    return el(
      "section",
      { class: "comparison" },
      headline,
      comparison.verdict ? el("p", { class: "verdict", text: comparison.verdict }) : null,
      figures.length ? el("p", { class: "muted small", text: figures.join(" · ") }) : null,
      ranking,
    );
  }

  window.ForgeRender = Object.freeze({ ACTIVE, FINISHED_TASK, ago, duration, taskCard });
})();
