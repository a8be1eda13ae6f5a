// distil review: the page's behaviour. Plain JavaScript, no build step.
//
// The server renders every piece of HTML (autoescaped Jinja templates); this
// script only swaps in fragments the server rendered, and never builds HTML
// from document text. The draft of the open document is a JSON record kept
// here; every edit is sent to the server (POST /api/edit), which checks it
// against the schema and the tokens and answers with the new draft and its
// fragment. A decision (POST /api/decisions) is saved before the page moves on.
(function () {
  "use strict";

  const body = document.body;
  const message = document.getElementById("message");

  function say(text, isError) {
    if (!message) return;
    message.textContent = text || "";
    message.classList.toggle("error", Boolean(isError));
  }

  async function api(method, path, payload) {
    const options = { method: method, credentials: "same-origin", headers: {} };
    if (payload !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    const response = await fetch(path, options);
    if (response.status === 204) return null;
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      let detail = data && data.detail;
      if (Array.isArray(detail)) {
        detail = detail.map(function (d) { return (d.loc || []).join(".") + ": " + d.msg; }).join("; ");
      }
      throw new Error(detail || response.status + " " + response.statusText);
    }
    return data;
  }

  // The token form (only on the login page).
  const login = document.getElementById("login");
  if (login) {
    login.addEventListener("submit", function (event) {
      event.preventDefault();
      api("POST", "/api/login", { token: document.getElementById("token").value })
        .then(function () { window.location.reload(); })
        .catch(function (err) { say(err.message, true); });
    });
    return;
  }
  if (!body.dataset.key) return; // the "all decided" page

  const key = body.dataset.key;
  const position = Number(body.dataset.position);
  const total = Number(body.dataset.total);
  const cameFrom = body.dataset.from ? Number(body.dataset.from) : null;
  const holder = document.getElementById("document");
  const chooser = document.getElementById("relation-chooser");
  const pendingText = document.getElementById("relation-pending");
  const entityLabels = Array.from(document.querySelectorAll("[data-label]")).map(function (b) { return b.dataset.label; });
  const relationLabels = Array.from(document.querySelectorAll("[data-rel-label]")).map(function (b) { return b.dataset.relLabel; });

  const state = { record: null, history: [], selected: null, pending: null, busy: false };

  function go(at) {
    const query = at === null ? "" : "?at=" + at + "&from=" + position;
    window.location.assign("/" + query);
  }

  function showSelection() {
    holder.querySelectorAll(".ent.selected").forEach(function (el) { el.classList.remove("selected"); });
    if (state.selected !== null) {
      const el = holder.querySelector('.ent[data-ent="' + state.selected + '"]');
      if (el) el.classList.add("selected");
    }
    if (chooser) chooser.hidden = state.pending === null;
    if (state.pending !== null && pendingText && state.record) {
      const ents = state.record.entities;
      pendingText.textContent = "relation: " + ents[state.pending.head].text + " → ? → " + ents[state.pending.tail].text;
    }
  }

  function clearChoice() {
    state.selected = null;
    state.pending = null;
    showSelection();
  }

  async function edit(op) {
    if (state.busy || !state.record) return;
    state.busy = true;
    try {
      const result = await api("POST", "/api/edit", { key: key, record: state.record, op: op });
      state.history.push({ record: state.record, html: holder.innerHTML });
      state.record = result.record;
      holder.innerHTML = result.html; // rendered and escaped by the server
      say("");
      clearChoice();
    } catch (err) {
      say(err.message, true);
    } finally {
      state.busy = false;
    }
  }

  async function decide(decision) {
    if (state.busy || !state.record) return;
    state.busy = true;
    try {
      const result = await api("POST", "/api/decisions", { key: key, decision: decision, record: state.record });
      say("saved: " + result.saved.decision);
      go(result.next);
    } catch (err) {
      say(err.message, true);
      state.busy = false;
    }
  }

  function undo() {
    const last = state.history.pop();
    if (last) {
      state.record = last.record;
      holder.innerHTML = last.html;
      clearChoice();
      say("undone");
    } else if (cameFrom !== null) {
      window.location.assign("/?at=" + cameFrom); // reopen the document just decided
    } else {
      say("nothing to undo");
    }
  }

  // A point of the selection as a character offset, read from the data-s offsets the server put on every
  // token and whitespace piece.
  function offsetOf(node, offset) {
    if (node.nodeType === Node.TEXT_NODE) {
      const piece = node.parentElement && node.parentElement.closest("[data-s]");
      if (piece) return Number(piece.dataset.s) + Math.min(offset, node.length);
      const mark = node.parentElement && node.parentElement.closest(".ent");
      return mark ? Number(mark.dataset.to) : null; // inside an entity's label badge
    }
    const child = node.childNodes[offset];
    if (child) {
      const el = child.nodeType === Node.ELEMENT_NODE ? child : child.parentElement;
      const first = el.matches("[data-s]") ? el : el.querySelector("[data-s]");
      if (first) return Number(first.dataset.s);
    }
    const pieces = node.querySelectorAll ? node.querySelectorAll("[data-s]") : [];
    return pieces.length ? Number(pieces[pieces.length - 1].dataset.e) : null;
  }

  function selectedRange() {
    const selection = window.getSelection();
    const text = document.getElementById("text");
    if (!selection || selection.isCollapsed || !text) return null;
    if (!text.contains(selection.anchorNode) || !text.contains(selection.focusNode)) return null;
    const a = offsetOf(selection.anchorNode, selection.anchorOffset);
    const b = offsetOf(selection.focusNode, selection.focusOffset);
    if (a === null || b === null || a === b) return null;
    return { start: Math.min(a, b), end: Math.max(a, b) };
  }

  // A label chosen by key or click: a relation type when a relation waits for one, else the label of the
  // selected text (a new entity) or of the clicked entity.
  function chooseEntityLabel(label) {
    const range = selectedRange();
    if (range) {
      window.getSelection().removeAllRanges();
      edit({ op: "add_entity", start: range.start, end: range.end, label: label });
    } else if (state.selected !== null) {
      edit({ op: "relabel_entity", index: state.selected, label: label });
    } else {
      say("select some text (or click an entity) first, then choose its label");
    }
  }

  function chooseRelation(label) {
    if (state.pending === null) return;
    edit({ op: "add_relation", head: state.pending.head, tail: state.pending.tail, label: label });
  }

  function clickEntity(index) {
    if (state.selected === null || state.selected === index || relationLabels.length === 0) {
      state.selected = state.selected === index ? null : index;
      state.pending = null;
      say(state.selected === null ? "" : "entity selected: press a label key to change it, Delete to remove it" +
        (relationLabels.length ? ", or click the tail of a relation" : ""));
    } else {
      state.pending = { head: state.selected, tail: index };
      say("choose the relation type");
    }
    showSelection();
  }

  document.addEventListener("mousedown", function (event) {
    // Keep the text selection when a label button is clicked.
    if (event.target.closest("[data-label], [data-rel-label]")) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    const target = event.target;
    const selection = window.getSelection();
    let el;
    if ((el = target.closest(".ent-remove"))) {
      edit({ op: "remove_entity", index: Number(el.dataset.ent) });
    } else if ((el = target.closest(".rel-remove"))) {
      edit({ op: "remove_relation", index: Number(el.dataset.rel) });
    } else if ((el = target.closest("[data-label]"))) {
      chooseEntityLabel(el.dataset.label);
    } else if ((el = target.closest("[data-rel-label]"))) {
      chooseRelation(el.dataset.relLabel);
    } else if ((el = target.closest(".cat"))) {
      edit({ op: "set_category", label: el.dataset.cat });
    } else if ((el = target.closest(".ent"))) {
      if (selection && !selection.isCollapsed) return; // the end of a text selection, not a click
      clickEntity(Number(el.dataset.ent));
    } else if (target.closest("#accept")) {
      decide("accept");
    } else if (target.closest("#reject")) {
      decide("reject");
    } else if (target.closest("#undo")) {
      undo();
    } else if (target.closest("#next")) {
      go(position < total ? position + 1 : total);
    } else if (target.closest("#prev")) {
      go(position > 1 ? position - 1 : 1);
    } else if (target.closest("#relation-cancel")) {
      clearChoice();
      say("");
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    if (event.altKey || event.metaKey) return;
    const k = event.key;
    if (event.ctrlKey) {
      if (k === "z" || k === "Z") { event.preventDefault(); undo(); }
      return;
    }
    if (/^[1-9]$/.test(k)) {
      const n = Number(k) - 1;
      event.preventDefault();
      if (state.pending !== null) {
        if (n < relationLabels.length) chooseRelation(relationLabels[n]);
      } else if (n < entityLabels.length) {
        chooseEntityLabel(entityLabels[n]);
      }
      return;
    }
    switch (k) {
      case "a": decide("accept"); break;
      case "x": decide("reject"); break;
      case "u": undo(); break;
      case "n": case "ArrowRight": go(position < total ? position + 1 : total); break;
      case "p": case "ArrowLeft": go(position > 1 ? position - 1 : 1); break;
      case "Delete": case "Backspace":
        if (state.selected !== null) edit({ op: "remove_entity", index: state.selected });
        break;
      case "Escape": clearChoice(); window.getSelection().removeAllRanges(); say(""); break;
      default: return;
    }
    event.preventDefault();
  });

  // The draft starts as the document the server shows (GET /api/document).
  api("GET", "/api/document?at=" + position)
    .then(function (data) { state.record = data.record; body.classList.add("ready"); })
    .catch(function (err) { say(err.message, true); });
})();
