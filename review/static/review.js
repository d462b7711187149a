// AffordGrasp review page: one queue item at a time, decided with buttons or keys.
// Every piece of text from the API goes into the page through textContent (never as markup), so an object
// class or comment that contains "<script>" shows as text.
"use strict";

(() => {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");  // sent on as a Bearer header; pictures are fetched with it too
  const REVIEWER_KEY = "afford-review-reviewer";
  const REVIEWER_RE = /^[A-Za-z0-9_.@-]{1,64}$/;  // schemas.review.REVIEWER_PATTERN

  const $ = (id) => document.getElementById(id);
  const view = {
    classes: [],
    cycle: null,
    current: null,      // the ItemState on screen
    total: 0,
    busy: false,
    imageUrl: null,     // object URL of the picture on screen, revoked when replaced
    imageRequest: 0,    // newest picture request; older answers are dropped
  };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ------------------------------------------------------------------------------------------------ API

  function authHeaders() {
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
    } catch (_) { /* not JSON */ }
    return response.status + " " + response.statusText;
  }

  async function api(path, { method = "GET", body, allow404 = false } = {}) {
    const headers = Object.assign({ Accept: "application/json" }, authHeaders());
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch("api/" + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 404 && allow404) return null;
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return response.json();
  }

  // ------------------------------------------------------------------------------------------ helpers

  function setText(id, text) {
    $(id).textContent = text === null || text === undefined ? "" : String(text);
  }

  function setStatus(message, kind = "info") {
    const status = $("status");
    status.textContent = message;
    status.dataset.kind = kind;
  }

  function showError(error) {
    if (error instanceof ApiError && error.status === 401) {
      setStatus("Not authorised: open this page with the link that includes ?token=…", "error");
    } else {
      setStatus("Error: " + (error && error.message ? error.message : String(error)), "error");
    }
  }

  function percent(fraction) {
    return (fraction * 100).toFixed(1) + " %";
  }

  function describeState(s) {
    if (s.state === "pending") return "not decided yet";
    if (s.state === "disputed") return "disputed: " + s.reviewer + " disagree";
    let text = s.state;
    if (s.state === "relabelled") text += " to " + s.label;
    if (s.reviewer) text += " by " + s.reviewer;
    return text;
  }

  function setBusy(busy) {
    view.busy = busy;
    document.querySelectorAll("button").forEach((b) => {
      b.disabled = busy || b.dataset.locked === "true";
    });
  }

  // ---------------------------------------------------------------------------------------- reviewer

  function reviewer() {
    const name = $("reviewer").value.trim();
    return REVIEWER_RE.test(name) ? name : null;
  }

  function saveReviewer() {
    const name = reviewer();
    $("ask-reviewer").hidden = name !== null;
    if (name === null) {
      setStatus("Reviewer name: 1-64 letters, digits or _ . @ -", "error");
      return;
    }
    try { window.localStorage.setItem(REVIEWER_KEY, name); } catch (_) { /* storage off: ask again next time */ }
    setStatus("Reviewing as " + name + ".");
  }

  function requireReviewer() {
    const name = reviewer();
    if (name === null) {
      $("ask-reviewer").hidden = false;
      $("reviewer").focus();
      setStatus("Type your reviewer name first (top right), then press Enter.", "error");
    }
    return name;
  }

  function loadReviewer() {
    let saved = null;
    try { saved = window.localStorage.getItem(REVIEWER_KEY); } catch (_) { /* storage off */ }
    $("reviewer").value = saved || "";
    if (!reviewer()) {
      $("ask-reviewer").hidden = false;
      $("reviewer").focus();
    }
  }

  // ------------------------------------------------------------------------------------------ display

  function buildRelabelButtons(classes) {
    view.classes = classes;
    const group = $("relabel");
    group.replaceChildren();
    classes.forEach((name, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.id = "relabel-" + name;
      button.className = "relabel-button";
      const key = document.createElement("kbd");
      key.textContent = String(index + 1);
      button.append(key, " " + name);
      button.addEventListener("click", () => decide("relabelled", name));
      group.append(button);
    });
  }

  function showProgress(progress) {
    view.total = progress.total;
    setText("progress", progress.decided + " of " + progress.total);
    const fraction = progress.total ? progress.decided / progress.total : 0;
    $("progress-bar").style.width = (fraction * 100).toFixed(1) + "%";  // CSSOM: allowed by the page's CSP
    const option = $("cycle").querySelector('option[value="' + progress.cycle + '"]');
    if (option) option.textContent = cycleLabel(progress);
  }

  function showItem(s) {
    view.current = s;
    const item = s.item;
    $("review").hidden = false;
    $("complete").hidden = true;
    setText("position", (item.position + 1) + " / " + view.total);
    setText("state", describeState(s));
    $("state").dataset.state = s.state;
    setText("dataset", item.dataset);
    setText("category", item.object_category);
    setText("predicted", item.predicted);
    setText("confidence", percent(item.confidence));
    showReviews(s);
    $("comment").value = s.state === "pending" ? "" : (s.comment || "");
    view.classes.forEach((name) => {
      const button = $("relabel-" + name);
      const isPredicted = name === item.predicted;
      button.dataset.locked = String(isPredicted);  // relabelling to the predicted class is an accept
      button.disabled = isPredicted || view.busy;
      button.title = isPredicted ? "This is the predicted class: accept instead" : "Relabel to " + name;
      button.classList.toggle("chosen", s.state === "relabelled" && s.label === name);
    });
    $("prev").dataset.locked = String(item.position <= 0);
    $("next").dataset.locked = String(item.position >= view.total - 1);
    $("prev").disabled = view.busy || item.position <= 0;
    $("next").disabled = view.busy || item.position >= view.total - 1;
    loadImage(item.cycle, item.position);
    // The 3-D view (view3d.js, a module) listens for this; it fetches with the same token.
    document.dispatchEvent(new CustomEvent("review:item", { detail: {
      cycle: item.cycle, position: item.position, total: view.total, predicted: item.predicted,
      headers: authHeaders() } }));
  }

  // An overlap item asks for two reviewers; a disputed one waits for a further decision to make a majority.
  function showReviews(s) {
    const needed = s.item.reviews || 1;
    const votes = (s.reviewers || []).length;
    const mine = reviewer() !== null && (s.reviewers || []).includes(reviewer());
    let text = needed === 1 ? "one reviewer" : "second opinion: " + Math.min(votes, needed) + " of " + needed + " decided";
    if (s.state === "disputed") text = "disputed: " + votes + " reviewers disagree; a further decision settles it";
    if (needed > 1 && mine) text += " (yours included)";
    setText("reviews", text);
    $("reviews").dataset.state = s.state === "disputed" ? "disputed" : (needed > 1 ? "overlap" : "single");
  }

  async function loadImage(cycle, position) {
    const request = ++view.imageRequest;
    const image = $("image");
    setText("image-caption", "Loading picture…");
    try {
      const response = await fetch("api/cycles/" + cycle + "/items/" + position + "/image", { headers: authHeaders() });
      if (request !== view.imageRequest) return;  // the reviewer has moved on
      if (!response.ok) throw new ApiError(response.status, await errorText(response));
      const url = URL.createObjectURL(await response.blob());
      if (request !== view.imageRequest) { URL.revokeObjectURL(url); return; }
      if (view.imageUrl) URL.revokeObjectURL(view.imageUrl);
      view.imageUrl = url;
      image.src = url;
      image.hidden = false;
      setText("image-caption", "Left and right: two views of the same grasp. Object parts are coloured by label.");
    } catch (error) {
      if (request !== view.imageRequest) return;
      image.hidden = true;
      image.removeAttribute("src");
      setText("image-caption", "No picture: " + error.message);
    }
  }

  function showComplete(progress) {
    view.current = null;
    $("review").hidden = true;
    $("complete").hidden = false;
    const by = progress.by_state;
    setText("complete-summary", "Cycle " + progress.cycle + ": " + progress.total + " items — " +
      by.accepted + " accepted, " + by.rejected + " rejected, " + by.relabelled + " relabelled, " +
      by.skipped + " skipped. Thank you!");
  }

  function showWaiting(progress) {
    view.current = null;
    $("review").hidden = true;
    $("complete").hidden = true;
    const open = progress.total - progress.decided;
    setStatus("Nothing left for you in cycle " + progress.cycle + ": " + open + " item" + (open === 1 ? "" : "s") +
      " wait for another reviewer (second opinions or disputes). Thank you!");
  }

  function showNothing(message) {
    $("review").hidden = true;
    $("complete").hidden = true;
    setStatus(message);
  }

  // ------------------------------------------------------------------------------------------ loading

  function cycleLabel(progress) {
    const done = progress.total > 0 && progress.decided === progress.total;
    return "Cycle " + progress.cycle + " — " + progress.decided + "/" + progress.total + (done ? " ✓" : "");
  }

  async function loadCycles() {
    const cycles = await api("cycles");
    if (cycles.length === 0) {
      showNothing("No review queue yet: the self-training flow has not sent one.");
      return;
    }
    const select = $("cycle");
    select.replaceChildren();
    cycles.forEach((c) => {
      const option = document.createElement("option");
      option.value = String(c.cycle);
      option.textContent = cycleLabel(c.progress);
      select.append(option);
    });
    $("cycle-field").hidden = cycles.length < 2;
    const asked = Number(params.get("cycle"));
    const open = cycles.filter((c) => c.progress.decided < c.progress.total);
    const chosen = cycles.some((c) => c.cycle === asked) && params.has("cycle")
      ? asked : (open.length ? open[open.length - 1] : cycles[cycles.length - 1]).cycle;
    await openCycle(chosen);
  }

  async function openCycle(cycle) {
    view.cycle = cycle;
    $("cycle").value = String(cycle);
    await showNext(-1);
  }

  async function showNext(after) {
    const name = reviewer();
    const who = name === null ? "" : "&reviewer=" + encodeURIComponent(name);
    const [next, progress] = await Promise.all([
      api("cycles/" + view.cycle + "/next?after=" + after + who, { allow404: true }),
      api("cycles/" + view.cycle + "/progress"),
    ]);
    showProgress(progress);
    if (next !== null) showItem(next);
    else if (progress.total > 0 && progress.decided === progress.total) showComplete(progress);
    else showWaiting(progress);
    loadReviewerStats(view.cycle);
  }

  async function showPosition(position) {
    if (position < 0 || position >= view.total) {
      setStatus(position < 0 ? "This is the first item." : "This is the last item.");
      return;
    }
    showItem(await api("cycles/" + view.cycle + "/items/" + position));
  }

  // ------------------------------------------------------------------------------- reviewer figures

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "n/a" : String(text);
    row.append(td);
  }

  function seconds(value) {
    return value === null || value === undefined ? "n/a" : value.toFixed(1);
  }

  // Time per decision (median, p90) and agreement on the overlap items, per reviewer; kappa per pair.
  async function loadReviewerStats(cycle) {
    try {
      const [pace, agreement] = await Promise.all([
        api("cycles/" + cycle + "/pace"), api("cycles/" + cycle + "/agreement")]);
      if (cycle !== view.cycle) return;
      const share = {};
      agreement.reviewers.forEach((r) => { share[r.reviewer] = r; });
      const body = $("reviewer-rows");
      body.replaceChildren();
      pace.forEach((p) => {
        const row = document.createElement("tr");
        const agreed = share[p.reviewer];
        cell(row, p.reviewer);
        cell(row, p.decisions);
        cell(row, seconds(p.median_s));
        cell(row, seconds(p.p90_s));
        cell(row, agreed && agreed.share !== null ? percent(agreed.share) + " of " + agreed.items : null);
        body.append(row);
      });
      const pairs = $("reviewer-pairs");
      pairs.replaceChildren();
      agreement.pairs.forEach((p) => {
        const item = document.createElement("li");
        const kappa = p.kappa === null ? "n/a" : p.kappa.toFixed(2);
        item.textContent = p.reviewers.join(" and ") + ": Cohen's kappa " + kappa + " on " + p.items + " shared items";
        pairs.append(item);
      });
      const n = agreement.overlapping;
      setText("reviewer-summary", n + (n === 1 ? " item" : " items") + " decided by two or more reviewers; " +
        agreement.disputed.length + " disputed.");
    } catch (error) {
      setText("reviewer-summary", "Reviewer figures unavailable: " + error.message);
    }
  }

  // ------------------------------------------------------------------------------------------ actions

  async function run(action) {
    if (view.busy) return;  // one request at a time: a double key press must not decide twice
    setBusy(true);
    try {
      await action();
    } catch (error) {
      showError(error);
    } finally {
      setBusy(false);
    }
  }

  function decide(decision, label) {
    const current = view.current;
    if (!current) return;
    const name = requireReviewer();
    if (!name) return;
    if (decision === "relabelled" && label === current.item.predicted) {
      setStatus(label + " is the predicted class: press A to accept it.", "error");
      return;
    }
    const body = { sample_id: current.item.sample_id, decision, reviewer: name, comment: $("comment").value.trim() };
    if (label) body.label = label;
    run(async () => {
      const out = await api("cycles/" + view.cycle + "/decisions", { method: "POST", body });
      setStatus("Saved item " + (out.state.item.position + 1) + ": " + describeState(out.state) + ".", "ok");
      await showNext(out.state.item.position);
    });
  }

  function undo() {
    const name = requireReviewer();
    if (!name || view.cycle === null) return;
    run(async () => {
      const out = await api("cycles/" + view.cycle + "/undo", { method: "POST", body: { reviewer: name } });
      showProgress(out.progress);
      if (out.state === null) {
        setStatus("Nothing of yours left to undo in cycle " + view.cycle + ".");
        return;
      }
      showItem(out.state);  // back to the undone item, so it can be decided again
      setStatus("Undone: item " + (out.state.item.position + 1) + " is " + describeState(out.state) + ".", "ok");
    });
  }

  function step(delta) {
    const from = view.current ? view.current.item.position : (delta < 0 ? view.total : -1);
    run(() => showPosition(from + delta));
  }

  // --------------------------------------------------------------------------------------- keyboard

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();  // leave the comment box to use the shortcuts again
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const reviewing = view.current !== null && !$("review").hidden;
    if (key === "u") undo();
    else if (key === "ArrowLeft") step(-1);
    else if (key === "ArrowRight") step(1);
    else if (reviewing && key === "a") decide("accepted");
    else if (reviewing && key === "r") decide("rejected");
    else if (reviewing && key === "s") decide("skipped");
    else if (reviewing && /^[1-9]$/.test(key) && Number(key) <= view.classes.length) {
      decide("relabelled", view.classes[Number(key) - 1]);
    } else return;
    event.preventDefault();
  }

  // ---------------------------------------------------------------------------------------- start-up

  function wire() {
    $("accept").addEventListener("click", () => decide("accepted"));
    $("reject").addEventListener("click", () => decide("rejected"));
    $("skip").addEventListener("click", () => decide("skipped"));
    $("undo").addEventListener("click", undo);
    $("undo-complete").addEventListener("click", undo);
    $("prev").addEventListener("click", () => step(-1));
    $("next").addEventListener("click", () => step(1));
    $("review-again").addEventListener("click", () => run(() => showPosition(0)));
    $("cycle").addEventListener("change", (event) => run(() => openCycle(Number(event.target.value))));
    $("reviewer").addEventListener("change", saveReviewer);
    $("reviewer").addEventListener("keydown", (event) => {
      if (event.key === "Enter") { saveReviewer(); event.target.blur(); }
    });
    document.addEventListener("keydown", onKey);
  }

  async function start() {
    wire();
    loadReviewer();
    try {
      buildRelabelButtons(await api("classes"));
      await loadCycles();
    } catch (error) {
      showError(error);
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
