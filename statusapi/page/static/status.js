/* healthd status page, live. The page is complete without this script; with it, rows,
   counts and the banner follow the SSE stream (resuming after the newest history id the
   page was rendered with), each change is announced in the aria-live region, a lost
   stream is reopened with backoff, and while it cannot be held the page polls the
   events feed and the summary every 30 s. */
(function () {
  "use strict";
  var body = document.body;
  var after = Number(body.getAttribute("data-after")) || 0;
  /* the status words come from the server (healthd/core/words.py), as does which count as down */
  var WORDS = (body.getAttribute("data-words") || "").split(" ");
  var DOWN = (body.getAttribute("data-down") || "").split(" ");
  var CONNECTED = WORDS[0], UNKNOWN = WORDS[WORDS.length - 1];
  var live = document.getElementById("live");
  var mode = document.querySelector("[data-mode]");
  var heartbeat = Number(body.getAttribute("data-heartbeat")) || null;
  var skew = Date.now() / 1000 - Number(body.getAttribute("data-rendered"));
  var source = null, failures = 0, pollTimer = null, retryTimer = null;

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    var h = Math.floor(m / 60); m %= 60;
    if (h < 24) return m ? h + " h " + m + " min" : h + " h";
    var d = Math.floor(h / 24); h %= 24;
    return h ? d + " d " + h + " h" : d + " d";
  }

  function setMode(text) { if (mode) mode.textContent = text; }

  function overall(counts, downInMaintenance) {  /* the server's rule: pageview.overall */
    var down = -downInMaintenance, total = 0;
    DOWN.forEach(function (w) { down += counts[w]; });
    WORDS.forEach(function (w) { total += counts[w]; });
    var noun = total === 1 ? "source" : "sources";
    if (down === 0) {
      if (counts.maintenance) return ["maintenance", "Maintenance in progress: " + counts.maintenance + " of " + total + " " + noun];
      return ["operational", "All systems operational"];
    }
    var what = down + " of " + total + " " + noun + " not " + CONNECTED;
    if (down * 2 > total - counts[UNKNOWN] - downInMaintenance) return ["outage", "Major outage: " + what];
    return ["degraded", "Partial outage: " + what];
  }

  function setBanner(banner, counts, downInMaintenance) {
    WORDS.forEach(function (w) {
      var el = document.querySelector('[data-count="' + w + '"]');
      if (el) el.textContent = counts[w];
    });
    var o = overall(counts, downInMaintenance);
    banner.setAttribute("data-overall", o[0]);
    banner.className = banner.className.replace(/\bb-\w+/, "b-" + o[0]);
    banner.querySelector("[data-sentence]").textContent = o[1];
  }

  /* A bounded page (a long one, or one group's page) has no row for most sources: its
     counts start from the server's and each transition moves one source between them. */
  function recountPartial(banner, ev, row) {
    if (ev.from === ev.to || (row && row.getAttribute("data-enabled") === "false")) return;
    var counts = {maintenance: Number(banner.getAttribute("data-maintenance-count")) || 0};
    WORDS.forEach(function (w) {
      var el = document.querySelector('[data-count="' + w + '"]');
      counts[w] = el ? Number(el.textContent) || 0 : 0;
    });
    var dim = Number(banner.getAttribute("data-down-in-maintenance")) || 0;
    if (counts[ev.from] > 0) counts[ev.from] -= 1;
    if (ev.to in counts) counts[ev.to] += 1;
    var inMaintenance = row ? row.getAttribute("data-maintenance") === "true" : !!ev.maintenance;
    if (inMaintenance) {
      dim += (DOWN.indexOf(ev.to) >= 0 ? 1 : 0) - (DOWN.indexOf(ev.from) >= 0 ? 1 : 0);
      dim = Math.max(0, dim);
      banner.setAttribute("data-down-in-maintenance", dim);
    }
    setBanner(banner, counts, dim);
  }

  function recount(ev, row) {
    var banner = document.getElementById("banner");
    if (!banner) return;
    if (body.getAttribute("data-partial") === "true") { recountPartial(banner, ev, row); return; }
    var counts = {maintenance: 0};
    WORDS.forEach(function (w) { counts[w] = 0; });
    var downInMaintenance = 0;
    var rows = document.querySelectorAll(".rows [data-source-id]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-enabled") === "false") continue;
      var st = rows[i].getAttribute("data-status");
      if (st in counts) counts[st] += 1;
      if (rows[i].getAttribute("data-maintenance") === "true") {
        counts.maintenance += 1;
        if (DOWN.indexOf(st) >= 0) downInMaintenance += 1;
      }
    }
    setBanner(banner, counts, downInMaintenance);
  }

  function setStatus(row, ev) {
    row.setAttribute("data-status", ev.to);
    var word = row.querySelector("[data-word]");
    if (word) { word.textContent = ev.to; word.className = "st st-" + ev.to; }
    var pend = row.querySelector("[data-pending]");
    if (pend) pend.parentNode.removeChild(pend);
    var since = row.querySelector("[data-since]");
    if (!since && word) {
      var span = document.createElement("span");
      span.className = "since";
      span.appendChild(document.createTextNode("for "));
      since = document.createElement("time");
      since.setAttribute("data-since", "");
      span.appendChild(since);
      word.parentNode.insertBefore(span, word.nextSibling);
      word.parentNode.insertBefore(document.createTextNode(" "), span);
    }
    if (since) { since.setAttribute("datetime", ev.at); since.textContent = duration(Date.now() / 1000 - Date.parse(ev.at) / 1000); }
    row.classList.remove("changed"); void row.offsetWidth; row.classList.add("changed");
    /* a collapsed group ("all connected") is opened when one of its sources goes down */
    var group = row.closest ? row.closest("details.group") : null;
    if (group && DOWN.indexOf(ev.to) >= 0) {
      group.open = true;
      var allUp = group.querySelector("[data-all-up]");
      if (allUp) allUp.parentNode.removeChild(allUp);
    }
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function addRecent(ev, name, row) {
    var list = document.getElementById("recent");
    if (!list) return;
    var only = list.getAttribute("data-only");
    if (only && only !== ev.source_id) return;
    var none = list.querySelector(".none");
    if (none) list.removeChild(none);
    var li = document.createElement("li");
    var t = document.createElement("time");
    t.setAttribute("datetime", ev.at);
    var d = new Date(ev.at), iso = d.toISOString();
    t.textContent = only ? iso.replace("T", " ").slice(0, 19)
      : iso.slice(8, 10) + " " + MONTHS[d.getUTCMonth()] + " " + iso.slice(11, 19);
    li.appendChild(t);
    li.appendChild(document.createTextNode(" "));
    var link = row && row.querySelector("a.name");
    if (!only && link) {
      var a = document.createElement("a");
      a.href = link.getAttribute("href"); a.textContent = name;
      li.appendChild(a); li.appendChild(document.createTextNode(" "));
    } else if (!only) li.appendChild(document.createTextNode(name + " "));
    [["from", ev.from], ["to", ev.to]].forEach(function (p, i) {
      var s = document.createElement("span");
      s.className = "st st-" + p[1]; s.textContent = p[1];
      li.appendChild(s);
      if (i === 0) li.appendChild(document.createTextNode(" → "));
    });
    if (ev.error_message) {
      var m = document.createElement("span"); m.className = "msg"; m.textContent = " " + ev.error_message;
      li.appendChild(m);
    }
    list.insertBefore(li, list.firstChild);
    var max = Number(list.getAttribute("data-max")) || 20;
    while (list.children.length > max) list.removeChild(list.lastChild);
  }

  function apply(ev, id) {
    if (id) after = Math.max(after, id);
    var rows = document.querySelectorAll('[data-source-id="' + (window.CSS && CSS.escape ? CSS.escape(ev.source_id) : ev.source_id) + '"]');
    var name = ev.source_id, row = rows.length ? rows[0] : null;
    for (var i = 0; i < rows.length; i++) {
      name = rows[i].getAttribute("data-name") || name;
      if (ev.event === "transition") setStatus(rows[i], ev);
      else {
        var flap = rows[i].querySelector("[data-flapping]");
        if (flap) flap.hidden = ev.event !== "flapping_started";
      }
    }
    if (ev.event === "transition") {
      addRecent(ev, name, row);
      live.textContent = name + " is now " + ev.to + (ev.error_message ? ": " + ev.error_message : "");
      recount(ev, row);
    } else {
      live.textContent = name + (ev.event === "flapping_started" ? " started flapping" : " stopped flapping");
    }
  }

  function onMessage(e) {
    try { apply(JSON.parse(e.data), Number(e.lastEventId)); } catch (err) { /* a bad frame: skip it */ }
  }

  function connect() {
    retryTimer = null;
    if (!window.EventSource) { startPolling(); return; }
    var url = body.getAttribute("data-stream") + "?after=" + after;
    source = new EventSource(url);
    source.addEventListener("status", onMessage);
    source.addEventListener("flapping", onMessage);
    source.onopen = function () { failures = 0; stopPolling(); setMode("live"); };
    source.onerror = function () {
      /* the browser retries by itself (with Last-Event-ID) while the state is CONNECTING;
         a refused or broken stream is CLOSED: reopen it ourselves, later each time */
      setMode("reconnecting…");
      failures += 1;
      if (failures >= 3) startPolling();
      if (source.readyState === EventSource.CLOSED || failures >= 3) {
        source.close();
        var delay = Math.min(30000, 1000 * Math.pow(2, failures)) * (0.75 + Math.random() / 2);
        if (!retryTimer) retryTimer = setTimeout(connect, delay);
      }
    };
  }

  function getJSON(url, done) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", url);
    xhr.onload = function () { if (xhr.status === 200) { try { done(JSON.parse(xhr.responseText)); } catch (e) { /* ignore */ } } };
    xhr.send();
  }

  function poll() {
    getJSON(body.getAttribute("data-events") + "?after=" + after + "&limit=1000", function (r) {
      (r.events || []).forEach(function (ev) { apply(ev, ev.id); });
    });
    summary();
  }

  function summary() {
    getJSON(body.getAttribute("data-summary"), function (s) {
      if (s.daemon && s.daemon.last_heartbeat_at) heartbeat = Date.parse(s.daemon.last_heartbeat_at) / 1000;
      tick();
    });
  }

  function startPolling() {
    if (pollTimer) return;
    setMode("refreshing every 30 s");
    pollTimer = setInterval(poll, 30000);
  }

  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

  function tick() {
    var els = document.querySelectorAll("[data-since]");
    for (var i = 0; i < els.length; i++) {
      var at = Date.parse(els[i].getAttribute("datetime"));
      if (at) els[i].textContent = duration(Date.now() / 1000 - at / 1000);
    }
    var age = document.querySelector("[data-age]");
    if (age && heartbeat) age.textContent = duration(Date.now() / 1000 - skew - heartbeat) + " ago";
  }

  /* The day bar is one tab stop (named by its summary); inside it the arrow keys, Home
     and End move through the days shown (a roving tabindex: the day that has focus holds
     the bar's one stop), Escape goes back to the bar. Each day is named and shown on
     focus from the bar's data-first and the cell's place; its run's <title> has the
     figure. */
  var DAY_MS = 86400000, tip = null;

  function dayName(bar, cell) {
    var i = Math.round(Number(cell.getAttribute("x")) / 5);
    var date = new Date(Date.parse(bar.getAttribute("data-first") + "T00:00:00Z") + i * DAY_MS);
    var title = cell.parentNode.querySelector("title");
    var text = title ? title.textContent : "";
    return date.toISOString().slice(0, 10) + ": " + text.slice(text.indexOf(": ") + 2);
  }

  function showTip(cell, text) {
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "daytip"; tip.setAttribute("aria-hidden", "true");
      document.body.appendChild(tip);
    }
    tip.textContent = text; tip.hidden = false;
    var r = cell.getBoundingClientRect();
    var left = Math.max(4, Math.min(r.left + window.scrollX - 40, document.documentElement.clientWidth - tip.offsetWidth - 4));
    tip.style.left = left + "px"; tip.style.top = (r.bottom + window.scrollY + 4) + "px";
  }

  function holdStop(bar, el) {
    var held = bar.querySelectorAll("[tabindex]");
    for (var i = 0; i < held.length; i++) held[i].setAttribute("tabindex", "-1");
    bar.setAttribute("tabindex", el === bar ? "0" : "-1");
    if (el !== bar) el.setAttribute("tabindex", "0");
    el.focus();
  }

  function focusDay(bar, cell) {
    var name = dayName(bar, cell);
    cell.setAttribute("role", "img");
    cell.setAttribute("aria-label", name);
    holdStop(bar, cell);
    showTip(cell, name);
  }

  document.addEventListener("keydown", function (e) {
    var t = e.target, bar = t.closest ? t.closest("svg.bar") : null;
    if (!bar) return;
    if (e.key === "Escape" && t !== bar) { holdStop(bar, bar); if (tip) tip.hidden = true; e.preventDefault(); return; }
    var cells = Array.prototype.filter.call(bar.querySelectorAll("rect"), function (c) {
      return getComputedStyle(c).display !== "none" && getComputedStyle(c.parentNode).display !== "none";
    });
    var n = cells.length, at = cells.indexOf(t), next = -1;
    if (!n) return;
    if (e.key === "ArrowLeft") next = at < 0 ? n - 1 : Math.max(0, at - 1);
    else if (e.key === "ArrowRight") next = at < 0 ? 0 : Math.min(n - 1, at + 1);
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = n - 1;
    else return;
    e.preventDefault();
    focusDay(bar, cells[next]);
  });
  document.addEventListener("focusout", function (e) {
    if (tip && e.target.closest && e.target.closest("svg.bar")) tip.hidden = true;
  });

  setInterval(tick, 60000);
  setInterval(summary, 60000);  /* the daemon's freshness is not on the stream */
  connect();
})();
