// forgebot dashboard: tasks and their attempts, live over server-sent events.
// Everything shown is built with createElement/textContent: nothing from the server is ever parsed as HTML.
"use strict";

(() => {
  const API = "api/v1/";
  // Cookie-authenticated writes must carry this header: a cross-site form cannot send it (CSRF).
  const WRITE_HEADERS = { "X-Requested-With": "forgebot-dashboard", "Content-Type": "application/json" };
  const ACTIVE = new Set(["preparing", "running", "checking"]);
  const FINISHED_TASK = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
  const TASK_LIMIT = 50;
  const LOG_REFRESH_MS = 2000;
  const FOLLOW_UP_MS = [2000, 8000]; // read a finished task again after these delays
  const RELOAD_MS = 60000; // and the whole list this often, in case anything was missed

  const state = {
    session: null, // {authenticated, public, token}
    tasks: new Map(), // task id -> task JSON
    comparisons: new Map(), // task id -> comparison JSON
    openLogs: new Set(), // attempt ids whose log tail is expanded
    logs: new Map(), // attempt id -> {text, error}
    events: null, // the EventSource
    skew: 0, // server clock minus ours, in seconds
    timers: new Map(), // task id -> pending refetch
    retry: null,
  };

  const $ = (id) => document.getElementById(id);

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

  function ago(epoch) {
    const s = Math.max(0, Date.now() / 1000 + state.skew - epoch);
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

  // ---- talking to the API -------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      Object.assign(init.headers, WRITE_HEADERS);
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch {
      throw new ApiFailure(0, "the server cannot be reached");
    }
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isFinite(date)) state.skew = (date - Date.now()) / 1000;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message ? data.error.message : `HTTP ${response.status}`;
      throw new ApiFailure(response.status, message);
    }
    return data;
  }

  let noticeTimer = null;
  function notice(text, kind) {
    const node = $("notice");
    node.textContent = text;
    node.dataset.kind = kind || "info";
    node.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      node.hidden = true;
    }, 10000);
  }

  function setConnection(kind, text) {
    const node = $("connection");
    node.dataset.state = kind;
    node.textContent = text;
  }

  // ---- session --------------------------------------------------------------------------------------

  function applySession(session) {
    state.session = session;
    const canRead = session.authenticated || session.public;
    $("login").hidden = canRead;
    $("sign-out").hidden = !session.authenticated;
    $("sign-in").hidden = session.authenticated || !session.public;
    $("who").textContent = session.authenticated ? `signed in as ${session.token}` : session.public ? "read-only" : "";
    document.body.dataset.mode = session.authenticated ? "signed-in" : session.public ? "public" : "signed-out";
    if (canRead) start();
    else stop();
  }

  async function checkSession() {
    try {
      applySession(await api("GET", "session"));
    } catch (error) {
      setConnection("offline", "offline");
      notice(`Cannot reach forgebot: ${error.message}`, "error");
      scheduleRetry();
    }
  }

  function scheduleRetry() {
    clearTimeout(state.retry);
    state.retry = setTimeout(checkSession, 5000);
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $("token");
    const secret = input.value.trim();
    const error = $("login-error");
    error.textContent = "";
    if (!secret) {
      error.textContent = "Paste a token first.";
      return;
    }
    try {
      const session = await api("POST", "session", { token: secret });
      input.value = "";
      stop();
      applySession(session);
    } catch (failure) {
      error.textContent =
        failure.status === 401 ? `That token was not accepted: ${failure.message}` : failure.message;
    }
  }

  async function signOut() {
    try {
      await api("DELETE", "session");
    } catch (failure) {
      notice(`Sign out failed: ${failure.message}`, "error");
      return;
    }
    stop();
    await checkSession();
  }

  // ---- live data --------------------------------------------------------------------------------------

  function start() {
    if (state.events) return;
    setConnection("connecting", "connecting…");
    const source = new EventSource(API + "events");
    state.events = source;
    // Once the stream is open the server's subscription is live: (re)load everything, then apply events.
    source.addEventListener("open", () => {
      setConnection("live", "live");
      loadAll();
    });
    source.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      handleEvent(event);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (the session ended) or the server is gone: look again shortly.
        source.close();
        if (state.events === source) state.events = null;
        setConnection("offline", "offline");
        scheduleRetry();
      } else {
        setConnection("connecting", "reconnecting…");
      }
    });
  }

  function stop() {
    if (state.events) state.events.close();
    state.events = null;
    for (const timer of state.timers.values()) clearTimeout(timer);
    state.timers.clear();
    state.tasks.clear();
    state.comparisons.clear();
    state.openLogs.clear();
    state.logs.clear();
    $("tasks").replaceChildren();
    $("empty").hidden = true;
    setConnection("idle", "not connected");
  }

  async function loadAll() {
    let data;
    try {
      data = await api("GET", `tasks?limit=${TASK_LIMIT}`);
    } catch (failure) {
      if (failure.status === 401) return checkSession();
      notice(`Could not load tasks: ${failure.message}`, "error");
      return;
    }
    const fresh = new Map(data.tasks.map((task) => [task.id, stamp(task)]));
    for (const id of state.tasks.keys()) if (!fresh.has(id)) removeTask(id);
    state.tasks = fresh;
    for (const task of fresh.values()) {
      renderTask(task);
      if (FINISHED_TASK.has(task.status) && !state.comparisons.has(task.id)) loadComparison(task.id);
    }
    updateEmpty();
  }

  // Each attempt remembers when its JSON arrived, so elapsed time can tick on locally from there.
  function stamp(task) {
    const now = performance.now();
    for (const attempt of task.attempts) attempt._seen = now;
    return task;
  }

  function handleEvent(event) {
    const id = event.task_id;
    if (event.attempt) {
      event.attempt._seen = performance.now();
      const task = state.tasks.get(id);
      if (task) {
        const index = task.attempts.findIndex((a) => a.id === event.attempt.id);
        if (index >= 0) task.attempts[index] = event.attempt;
        else task.attempts.push(event.attempt);
        renderTask(task);
      }
    }
    if (event.kind === "attempt_progress") {
      if (!state.tasks.has(id)) refetch(id, 0);
      return;
    }
    // Status changes, new tasks and attempts, a finished task: read the task again (its status, links).
    refetch(id, event.kind === "attempt_status" ? 300 : 0);
    // What front-ends do once the engine is done (the bot opens the winner's pull request) has no event.
    if (event.kind === "task_finished") for (const wait of FOLLOW_UP_MS) setTimeout(() => refetch(id, 0), wait);
    if (event.attempt && state.openLogs.has(event.attempt.id)) loadLog(event.attempt.id);
  }

  function refetch(id, delay) {
    if (state.timers.has(id)) return;
    state.timers.set(
      id,
      setTimeout(async () => {
        state.timers.delete(id);
        let task;
        try {
          task = stamp(await api("GET", `tasks/${id}`));
        } catch (failure) {
          if (failure.status === 404) removeTask(id);
          else if (failure.status === 401) checkSession();
          return;
        }
        if (!state.events) return; // signed out meanwhile
        state.tasks.set(id, task);
        renderTask(task);
        updateEmpty();
        if (FINISHED_TASK.has(task.status)) loadComparison(id);
      }, delay),
    );
  }

  async function loadComparison(id) {
    try {
      state.comparisons.set(id, await api("GET", `tasks/${id}/compare`));
    } catch {
      return;
    }
    const task = state.tasks.get(id);
    if (task) renderTask(task);
  }

  // The task that holds this attempt (undefined when it is not on the page).
  function taskOf(attemptId) {
    for (const task of state.tasks.values()) if (task.attempts.some((a) => a.id === attemptId)) return task;
    return undefined;
  }

  async function loadLog(attemptId) {
    try {
      const attempt = await api("GET", `attempts/${attemptId}`);
      state.logs.set(attemptId, { text: attempt.log_tail || "", error: null });
    } catch (failure) {
      state.logs.set(attemptId, { text: "", error: failure.message });
    }
    const task = taskOf(attemptId);
    if (task) renderTask(task);
  }

  function toggleLog(attemptId) {
    if (state.openLogs.has(attemptId)) state.openLogs.delete(attemptId);
    else {
      state.openLogs.add(attemptId);
      loadLog(attemptId);
    }
    const task = taskOf(attemptId);
    if (task) renderTask(task);
  }

  async function cancel(path, what) {
    try {
      await api("POST", path);
      notice(`Cancelled ${what}.`, "info");
    } catch (failure) {
      const why = failure.status === 401 ? "sign in with an API token to make changes" : failure.message;
      notice(`Could not cancel ${what}: ${why}`, "error");
    }
  }

  function removeTask(id) {
    state.tasks.delete(id);
    state.comparisons.delete(id);
    const node = $(`task-${id}`);
    if (node) node.remove();
    updateEmpty();
  }

  function updateEmpty() {
    $("empty").hidden = state.tasks.size > 0 || !state.events;
  }

  // ---- rendering ----------------------------------------------------------------------------------------

  function renderTask(task) {
    const node = taskCard(task);
    const old = $(`task-${task.id}`);
    if (old) {
      old.replaceWith(node);
      return;
    }
    const list = $("tasks");
    const after = [...list.children].find((child) => Number(child.dataset.id) < task.id);
    list.insertBefore(node, after || null);
  }

  function badge(status) {
    return el("span", { class: `badge s-${status}`, text: label(status) });
  }

  function timeAgo(epoch) {
    if (!epoch) return "—";
    return el("time", {
      class: "ago",
      datetime: new Date(epoch * 1000).toISOString(),
      title: new Date(epoch * 1000).toLocaleString(),
      data: { epoch: String(epoch) },
      text: ago(epoch),
    });
  }

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

  function taskCard(task) {
    const comparison = state.comparisons.get(task.id);
    const winner = comparison && comparison.winner ? comparison.winner.attempt_id : null;
    const running = !FINISHED_TASK.has(task.status) && task.status !== "empty";
    const meta = el(
      "div",
      { class: "meta" },
      ...links(task).flatMap((part) => [part, " · "]),
      `base ${task.base_branch}`,
      " · ",
      `${task.strategy}`,
      " · created ",
      timeAgo(task.created_at),
    );
    const header = el(
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
            onclick: () => cancel(`tasks/${task.id}/cancel`, `task #${task.id}`),
          })
        : null,
    );
    const rows = task.attempts.flatMap((attempt) => attemptRows(task, attempt, attempt.id === winner));
    const table = el(
      "table",
      { class: "attempts" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ["#", "Agent", "Status", "Elapsed", "Diff", "Checks", "Tokens", "Cost", "Branch", ""].map((h) =>
            el("th", { scope: "col", text: h }),
          ),
        ),
      ),
      el("tbody", {}, rows),
    );
    return el(
      "article",
      { class: `task t-${task.status}`, id: `task-${task.id}`, data: { id: String(task.id), status: task.status } },
      header,
      meta,
      task.attempts.length ? table : el("p", { class: "muted", text: "No attempts yet." }),
      comparison ? comparisonBlock(comparison) : null,
    );
  }

  function attemptRows(task, attempt, isWinner) {
    const active = ACTIVE.has(attempt.status);
    const elapsed = el("td", {
      class: "elapsed num",
      data: {
        base: attempt.elapsed === null ? "" : String(attempt.elapsed),
        seen: String(attempt._seen || performance.now()),
        running: active && attempt.started_at ? "1" : "",
      },
      text: duration(attempt.elapsed),
    });
    const diff = attempt.diff;
    const diffCell = diff.files
      ? el(
          "td",
          { class: "diff num" },
          `${diff.files} file${diff.files === 1 ? "" : "s"} `,
          el("span", { class: "plus", text: `+${diff.insertions}` }),
          " ",
          el("span", { class: "minus", text: `−${diff.deletions}` }),
        )
      : el("td", { class: "diff num muted", text: "—" });
    const checks = attempt.checks.length
      ? attempt.checks.map((c) =>
          el("span", {
            class: `check ${c.passed ? "pass" : "fail"}`,
            title: c.timed_out ? "timed out" : `exit ${c.exit_code}`,
            text: `${c.passed ? "✓" : "✗"} ${c.name}`,
          }),
        )
      : [el("span", { class: "muted", text: "—" })];
    const usage = attempt.usage;
    const tokens = usage.tokens_in || usage.tokens_out ? `${count(usage.tokens_in)} / ${count(usage.tokens_out)}` : "—";
    const branchUrl = task.github && task.github.tree_url ? task.github.tree_url + attempt.branch.split("/").map(encodeURIComponent).join("/") : null;
    const branch = branchUrl
      ? el("a", { href: branchUrl, rel: "noopener" }, el("code", { text: attempt.branch }))
      : el("code", { text: attempt.branch });
    const open = state.openLogs.has(attempt.id);
    const actions = el(
      "td",
      { class: "actions" },
      el("button", {
        type: "button",
        class: "log-toggle",
        "aria-expanded": open ? "true" : "false",
        text: open ? "Hide log" : "Log",
        onclick: () => toggleLog(attempt.id),
      }),
      attempt.status === "queued" || active
        ? el("button", {
            type: "button",
            class: "cancel-attempt",
            text: "Cancel",
            onclick: () => cancel(`attempts/${attempt.id}/cancel`, `attempt #${attempt.id}`),
          })
        : null,
    );
    const statusCell = el(
      "td",
      { class: "status" },
      badge(attempt.status),
      active && attempt.progress ? el("div", { class: "progress", text: attempt.progress }) : null,
      attempt.error ? el("div", { class: "error", text: attempt.error }) : null,
    );
    const row = el(
      "tr",
      { class: `attempt a-${attempt.status}${isWinner ? " winner" : ""}`, id: `attempt-${attempt.id}`, data: { status: attempt.status } },
      el("td", { class: "num muted", text: `#${attempt.id}` }),
      el(
        "td",
        { class: "agent" },
        isWinner ? el("span", { class: "star", title: "winner", text: "★ " }) : null,
        el("strong", { text: attempt.agent }),
        attempt.model ? el("div", { class: "muted small", text: attempt.model }) : null,
      ),
      statusCell,
      elapsed,
      diffCell,
      el("td", { class: "checks" }, checks),
      el("td", { class: "num", text: tokens }),
      el("td", { class: "num cost", text: money(usage.cost_usd) }),
      el("td", { class: "branch" }, branch),
      actions,
    );
    if (!open) return [row];
    const log = state.logs.get(attempt.id);
    const body = !log
      ? el("p", { class: "muted", text: "Loading log…" })
      : log.error
        ? el("p", { class: "error", text: `Could not load the log: ${log.error}` })
        : el("pre", { class: "log", text: log.text || "(no output yet)" });
    return [row, el("tr", { class: "log-row", id: `log-${attempt.id}` }, el("td", { colspan: "10" }, body))];
  }

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

  // ---- clocks ---------------------------------------------------------------------------------------------

  function tick() {
    const now = performance.now();
    for (const cell of document.querySelectorAll("td.elapsed")) {
      if (!cell.dataset.running || cell.dataset.base === "") continue;
      cell.textContent = duration(Number(cell.dataset.base) + (now - Number(cell.dataset.seen)) / 1000);
    }
    for (const time of document.querySelectorAll("time.ago")) time.textContent = ago(Number(time.dataset.epoch));
  }

  function refreshLogs() {
    for (const id of state.openLogs) {
      const task = taskOf(id);
      const attempt = task && task.attempts.find((a) => a.id === id);
      if (attempt && (ACTIVE.has(attempt.status) || attempt.status === "queued")) loadLog(id);
    }
  }

  function boot() {
    $("login-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("sign-in").addEventListener("click", () => {
      $("login").hidden = !$("login").hidden; // on a public dashboard the form opens and closes
      if (!$("login").hidden) $("token").focus();
    });
    setInterval(tick, 1000);
    setInterval(refreshLogs, LOG_REFRESH_MS);
    setInterval(() => {
      if (state.events && state.events.readyState === EventSource.OPEN) loadAll();
    }, RELOAD_MS);
    checkSession();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
