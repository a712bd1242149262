// forgebot dashboard: tasks and their attempts, live over server-sent events. This file talks to the API and
// keeps the state; render.js (loaded first) builds what is shown, never parsing anything from the server as HTML.
"use strict";

(() => {
  const { ACTIVE, FINISHED_TASK, ago, duration, taskCard } = window.ForgeRender;
  const API = "api/v1/";
  // Cookie-authenticated writes must carry this header: a cross-site form cannot send it (CSRF).
  const WRITE_HEADERS = { "X-Requested-With": "forgebot-dashboard", "Content-Type": "application/json" };
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

  // What render.js needs to know besides the task, and what its buttons do.
  function view() {
    const { comparisons, openLogs, logs, skew } = state;
    return { comparisons, openLogs, logs, skew, cancel, toggleLog };
  }

  function renderTask(task) {
    const node = taskCard(task, view());
    const old = $(`task-${task.id}`);
    if (old) {
      old.replaceWith(node);
      return;
    }
    const list = $("tasks");
    const after = [...list.children].find((child) => Number(child.dataset.id) < task.id);
    list.insertBefore(node, after || null);
  }

  // ---- clocks ---------------------------------------------------------------------------------------------

  function tick() {
    const now = performance.now();
    for (const cell of document.querySelectorAll("td.elapsed")) {
      if (!cell.dataset.running || cell.dataset.base === "") continue;
      cell.textContent = duration(Number(cell.dataset.base) + (now - Number(cell.dataset.seen)) / 1000);
    }
    for (const time of document.querySelectorAll("time.ago")) time.textContent = ago(Number(time.dataset.epoch), state.skew);
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
