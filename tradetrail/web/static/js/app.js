// tradetrail's own page script (the CSP allows no inline script): the CSRF header on every htmx request that
// changes state, confirmations for plain forms, and the lineage viewer's live steps over server-sent events.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx: every request but a GET carries the session's CSRF token (the server checks it against the session)
  document.addEventListener("htmx:configRequest", function (event) {
    if ((event.detail.verb || "get").toLowerCase() !== "get") {
      event.detail.headers["X-CSRF-Token"] = csrfToken();
    }
  });

  // plain forms: data-confirm="question" asks before submitting (htmx forms use hx-confirm)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // a choice that fills a field (the wizard's symbol search): data-fill-target="#input" data-fill-value="SPX"
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-fill-target]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-fill-target"));
    if (!input) return;
    input.value = button.getAttribute("data-fill-value") || "";
    input.dispatchEvent(new Event("change", { bubbles: true }));
    input.focus();
  });

  function initCharts(root) {
    if (window.tradetrailCharts) window.tradetrailCharts.init(root);
  }

  function fragment(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;  // server-rendered and escaped; the CSP keeps any script in it from running
    return holder.firstElementChild;
  }

  // the lineage viewer of a running execution: each recorded step arrives as its rendered card
  function liveSteps() {
    var list = document.querySelector("[data-live-steps]");
    if (!list || !window.EventSource) return;
    var source = new EventSource(list.getAttribute("data-live-steps"));
    source.addEventListener("step", function (event) {
      var card = fragment(event.data);
      if (!card) return;
      var existing = document.getElementById(card.id);
      if (existing) existing.replaceWith(card); else list.appendChild(card);
      if (window.htmx) window.htmx.process(card);
      initCharts(card);
    });
    source.addEventListener("done", function (event) {
      source.close();
      list.removeAttribute("data-live-steps");
      var head = fragment(event.data);
      var old = document.getElementById("execution-head");
      if (head && old) {
        old.replaceWith(head);
        if (window.htmx) window.htmx.process(head);
      }
    });
  }

  document.addEventListener("htmx:afterSettle", function (event) { initCharts(event.target); });
  document.addEventListener("DOMContentLoaded", liveSteps);
})();
