// The Wasmbed dashboard's own script: device actions (start, stop, unload), deploy by upload
// with progress (server-sent events read from the upload's response), the live log's scrolling,
// and the latency charts (uPlot). Live tables and the log itself are htmx SSE swaps.
"use strict";

(function () {
  const LOG_KEEP = 500;

  function $(sel) { return document.querySelector(sel); }

  function show(out, ok, text) {
    out.textContent = text;
    out.className = ok ? "ok" : "bad";
    out.dataset.state = ok ? "ok" : "error";
  }

  function describe(reply) {
    if (reply.ok) {
      const r = reply.result || {};
      let t = r.line || JSON.stringify(r);
      if (r.ret !== undefined && r.ret !== null) t += "\nret = " + r.ret;
      if (reply.latency) t += "\n(" + reply.latency.total_ms + " ms in the gateway)";
      return t;
    }
    const e = reply.error || {};
    return (e.code || "ERROR") + ": " + (e.message || "") + (e.help ? "\n" + e.help : "");
  }

  // ---- device page -------------------------------------------------------------------------
  function setupDevice(root) {
    const device = root.dataset.device;
    const api = "/api/devices/" + encodeURIComponent(device) + "/";
    const form = $("#run");
    const out = $("#run-result");

    async function act(action, moduleId) {
      if (!moduleId) { show(out, false, "Give a module id first."); return; }
      const body = { module_id: moduleId };
      if (action === "start") {
        const func = $("#run-func").value.trim();
        if (func) body.func = func;
        const args = $("#run-args").value.split(",").map(s => s.trim()).filter(s => s !== "");
        if (args.some(a => !/^-?\d+$/.test(a))) { show(out, false, "Arguments must be integers."); return; }
        body.args = args.map(Number);
        body.wait_result = $("#run-wait").checked;
      } else if (action === "stop") {
        body.wait = true;
      }
      const buttons = root.querySelectorAll("button[data-action]");
      buttons.forEach(b => { b.disabled = true; });
      out.textContent = action + " " + moduleId + "…";
      out.className = "";
      out.dataset.state = "busy";
      try {
        const resp = await fetch(api + action, {
          method: "POST",
          headers: { "Content-Type": "application/json", "Accept": "application/json" },
          body: JSON.stringify(body),
        });
        const reply = await resp.json();
        show(out, reply.ok === true, describe(reply));
      } catch (e) {
        show(out, false, "request failed: " + e);
      } finally {
        buttons.forEach(b => { b.disabled = false; });
        htmx.trigger(document.body, "refresh-slots");
      }
    }

    form.addEventListener("submit", ev => {
      ev.preventDefault();
      act("start", $("#run-module").value.trim());
    });
    root.addEventListener("click", ev => {
      const b = ev.target.closest("button[data-action]");
      if (!b || b.type === "submit") return;
      const id = b.dataset.module || $("#run-module").value.trim();
      if (b.dataset.module) $("#run-module").value = b.dataset.module;
      act(b.dataset.action, id);
    });

    // Identity: approve / forget (the facts above follow live through the `state` events).
    const enrollOut = $("#identity-result");
    async function enroll(which) {
      const body = {};
      const fp = $("#identity-fingerprint").value.trim();
      if (which === "approve" && fp) body.fingerprint = fp;
      const buttons = root.querySelectorAll("button[data-enroll]");
      buttons.forEach(b => { b.disabled = true; });
      enrollOut.textContent = which + "…";
      enrollOut.className = "";
      enrollOut.dataset.state = "busy";
      try {
        const resp = await fetch(api + which, {
          method: "POST",
          headers: { "Content-Type": "application/json", "Accept": "application/json" },
          body: JSON.stringify(body),
        });
        const reply = await resp.json();
        if (reply.ok) {
          const id = (reply.result || {}).identity || {};
          show(enrollOut, true, which + ": " + id.state + (id.fingerprint ? " " + id.fingerprint : "") +
            (id.reason ? "\n" + id.reason : ""));
          enrollOut.dataset.identity = id.state;
        } else {
          show(enrollOut, false, describe(reply));
        }
      } catch (e) {
        show(enrollOut, false, "request failed: " + e);
      } finally {
        buttons.forEach(b => { b.disabled = false; });
        htmx.trigger(document.body, "refresh-slots");
      }
    }
    $("#enroll").addEventListener("submit", ev => { ev.preventDefault(); enroll("approve"); });
    $("#forget").addEventListener("click", () => enroll("forget"));

    // Deploy: the file goes up with XHR (upload progress), the answer comes back as SSE
    // (`progress` events of the compile and device-upload phases, then `reply`).
    const drop = $("#drop");
    const file = $("#deploy-file");
    const bar = $("#deploy-progress");
    const phase = $("#deploy-phase");
    const status = $("#deploy-status");
    const result = $("#deploy-result");

    function setPhase(name, done, total) {
      phase.textContent = name + (total ? " " + Math.round(100 * done / total) + "%" : "");
      bar.value = total ? Math.round(100 * done / total) : 0;
      const seen = status.dataset.phases ? status.dataset.phases.split(",") : [];
      if (!seen.includes(name)) { seen.push(name); status.dataset.phases = seen.join(","); }
    }

    function deploy(f) {
      const ext = (f.name.match(/\.([A-Za-z0-9]+)$/) || [])[1];
      if (!["c", "wasm", "aot"].includes((ext || "").toLowerCase())) {
        show(result, false, f.name + ": drop a .c, .wasm or .aot file");
        return;
      }
      let id = $("#deploy-module").value.trim() ||
        f.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 32);
      const q = new URLSearchParams({ module_id: id });
      if (ext.toLowerCase() === "c") q.set("mode", $("#deploy-mode").value);
      if ($("#deploy-replace").checked) q.set("replace", "true");
      status.dataset.phases = "";
      result.textContent = "";
      result.dataset.state = "busy";
      const xhr = new XMLHttpRequest();
      xhr.open("POST", api + "deploy?" + q.toString());
      xhr.setRequestHeader("Accept", "text/event-stream");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = e => { if (e.lengthComputable) setPhase("to gateway", e.loaded, e.total); };
      let seen = 0;
      let finished = false;
      function read() {
        const text = xhr.responseText;
        let end;
        while ((end = text.indexOf("\n\n", seen)) >= 0) {
          const block = text.slice(seen, end);
          seen = end + 2;
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (!data) continue;
          const v = JSON.parse(data);
          if (name === "progress") setPhase(v.phase, v.done, v.total);
          if (name === "reply") {
            finished = true;
            if (v.ok) setPhase("done", 1, 1);
            show(result, v.ok === true, describe(v));
            htmx.trigger(document.body, "refresh-slots");
            if (v.ok) $("#run-module").value = v.result.module_id || id;
          }
        }
      }
      xhr.onprogress = read;
      xhr.onload = () => {
        if (xhr.getResponseHeader("Content-Type") === "application/json") {
          try { show(result, false, describe(JSON.parse(xhr.responseText))); } catch (e) { show(result, false, xhr.responseText); }
          return;
        }
        read();
        if (!finished) show(result, false, "the gateway closed the stream before its reply (HTTP " + xhr.status + ")");
      };
      xhr.onerror = () => show(result, false, "upload failed (network error)");
      setPhase("to gateway", 0, f.size);
      xhr.send(f);
    }

    $("#deploy").addEventListener("submit", ev => {
      ev.preventDefault();
      if (file.files.length) deploy(file.files[0]);
      else show(result, false, "Choose or drop a file first.");
    });
    file.addEventListener("change", () => { if (file.files.length) deploy(file.files[0]); });
    ["dragenter", "dragover"].forEach(t => drop.addEventListener(t, ev => {
      ev.preventDefault(); drop.classList.add("over");
    }));
    ["dragleave", "drop"].forEach(t => drop.addEventListener(t, () => drop.classList.remove("over")));
    drop.addEventListener("drop", ev => {
      ev.preventDefault();
      if (ev.dataTransfer.files.length) deploy(ev.dataTransfer.files[0]);
    });

    // The live log: keep the last LOG_KEEP lines, follow the end unless scrolled up.
    const log = $("#log");
    let stick = true;
    log.addEventListener("scroll", () => {
      stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
    });
    document.body.addEventListener("htmx:sseMessage", () => {
      while (log.children.length > LOG_KEEP) log.removeChild(log.firstElementChild);
      if (stick) log.scrollTop = log.scrollHeight;
    });
    log.scrollTop = log.scrollHeight;
  }

  // ---- latency page ------------------------------------------------------------------------
  function setupLatency() {
    const select = $("#lat-key");
    const winSelect = $("#lat-window");
    const timeDiv = $("#chart-time");
    const winDiv = $("#chart-windows");
    const histDiv = $("#chart-hist");
    const winBody = $("#lat-windows tbody");
    let charts = { key: null, time: null, windows: null, hist: null };

    function width(div) { return Math.max(280, div.clientWidth || 600); }

    function clock(unix) {
      return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
    }

    function pcts(p) {
      return p ? p.p50.toFixed(3) + " / " + p.p95.toFixed(3) + " / " + p.p99.toFixed(3) : "–";
    }

    // The window selector: every window since start, newest first, after "all".
    function windowOptions(s, windowS) {
      const want = [["all", "all requests since the gateway started"]].concat(
        s.windows.slice().reverse().map(w => [String(w.start),
          clock(w.start) + "–" + clock(w.start + windowS) + " (" + w.total.count + " requests)"]));
      const same = winSelect.options.length === want.length &&
        want.every(([v, t], i) => winSelect.options[i].value === v && winSelect.options[i].text === t);
      if (!same) {
        const was = winSelect.value;
        winSelect.replaceChildren(...want.map(([v, t]) => new Option(t, v)));
        winSelect.value = want.some(([v]) => v === was) ? was : "all";
      }
    }

    // One row per window, newest first: when, requests, errors, p50 / p95 / p99 per phase.
    function windowRows(s, windowS) {
      winBody.replaceChildren(...s.windows.slice().reverse().map(w => {
        const tr = document.createElement("tr");
        tr.dataset.start = w.start;
        tr.dataset.count = w.total.count;
        tr.dataset.errors = w.errors;
        for (const text of [clock(w.start) + "–" + clock(w.start + windowS), w.total.count, w.errors,
          pcts(w.total), pcts(w.compile), pcts(w.transfer), pcts(w.device_phase)]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.appendChild(td);
        }
        return tr;
      }));
    }

    function draw(s, windowS) {
      const key = s.op + " · " + s.device;
      const t = s.series;
      const col = k => t.map(p => (p[k] === null || p[k] === undefined) ? null : p[k]);
      const timeData = [t.map(p => p.at), col("total_ms"), col("compile_ms"), col("transfer_ms"), col("device_ms")];
      // One point per window that had requests, labelled with its start (wall clock).
      const w = s.windows;
      const winLabels = w.map(x => clock(x.start));
      // Bars drawn over each other: p99 at the back, p50 in front.
      const winData = [w.map((x, i) => i), w.map(x => x.total.p99), w.map(x => x.total.p95),
        w.map(x => x.total.p50)];
      windowOptions(s, windowS);
      const chosen = w.find(x => String(x.start) === winSelect.value);
      const hist = chosen ? chosen.histogram : s.histogram;
      const histData = [hist.map((b, i) => i), hist.map(b => b.count)];
      const labels = hist.map(b => b.le_ms);
      charts.winLabels = winLabels;
      if (charts.key !== key) {
        for (const c of [charts.time, charts.windows, charts.hist]) if (c) c.destroy();
        charts.key = key;
        charts.time = new uPlot({
          width: width(timeDiv), height: 240,
          scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
          series: [
            {},
            { label: "total", stroke: "#2b5fad", width: 2, spanGaps: true },
            { label: "compile", stroke: "#8a5a00", spanGaps: true },
            { label: "transfer", stroke: "#7b3fa0", spanGaps: true },
            { label: "device", stroke: "#1c7c3a", spanGaps: true },
          ],
          axes: [{}, { label: "ms" }],
        }, timeData, timeDiv);
        charts.windows = new uPlot({
          width: width(winDiv), height: 220,
          scales: {
            x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] },
            y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
          },
          series: [
            { label: "window", value: (u, i) => i === null ? "" : (charts.winLabels[i] || "") },
            { label: "p99", fill: "#b3261e99", stroke: "#b3261e", paths: uPlot.paths.bars({ size: [0.6, 48] }), points: { show: false } },
            { label: "p95", fill: "#e0a030cc", stroke: "#8a5a00", paths: uPlot.paths.bars({ size: [0.6, 48] }), points: { show: false } },
            { label: "p50", fill: "#1c7c3a", stroke: "#1c7c3a", paths: uPlot.paths.bars({ size: [0.6, 48] }), points: { show: false } },
          ],
          axes: [{ values: (u, splits) => splits.map(i => Number.isInteger(i) ? (charts.winLabels[i] || "") : "") },
            { label: "ms" }],
        }, winData, winDiv);
        charts.hist = new uPlot({
          width: width(histDiv), height: 200,
          scales: { x: { time: false } },
          series: [
            { label: "≤ ms", value: (u, i) => i === null ? "" : labels[i] },
            { label: "requests", fill: "#2b5fad88", stroke: "#2b5fad", paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } },
          ],
          axes: [{ values: (u, splits) => splits.map(i => labels[i] === undefined ? "" : labels[i]) }, { label: "requests" }],
        }, histData, histDiv);
      } else {
        charts.time.setData(timeData);
        charts.windows.setData(winData);
        charts.hist.setData(histData);
      }
      windowRows(s, windowS);
      winDiv.dataset.key = key;
      winDiv.dataset.windows = w.length;
      histDiv.dataset.labels = labels.join(",");
      histDiv.dataset.key = key;
      histDiv.dataset.window = chosen ? String(chosen.start) : "all";
      histDiv.dataset.count = hist.reduce((n, b) => n + b.count, 0);
    }

    async function refresh() {
      try {
        const r = await fetch("/api/latency", { headers: { Accept: "application/json" } });
        if (!r.ok) return;
        const report = await r.json();
        const rows = report.latency;
        const keys = rows.map(s => s.op + " · " + s.device);
        if (select.options.length !== keys.length || [...select.options].some((o, i) => o.value !== keys[i])) {
          const was = select.value;
          select.replaceChildren(...keys.map(k => new Option(k, k)));
          if (keys.includes(was)) select.value = was;
        }
        const s = rows.find(s => s.op + " · " + s.device === select.value);
        if (s) draw(s, report.window_s);
      } catch (e) {
        // The gateway went away: the next refresh tries again.
      }
    }
    select.addEventListener("change", () => { winSelect.value = "all"; refresh(); });
    winSelect.addEventListener("change", refresh);
    window.addEventListener("resize", () => {
      if (charts.time) charts.time.setSize({ width: width(timeDiv), height: 240 });
      if (charts.windows) charts.windows.setSize({ width: width(winDiv), height: 220 });
      if (charts.hist) charts.hist.setSize({ width: width(histDiv), height: 200 });
    });
    refresh();
    setInterval(refresh, 2000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const dev = $("#device");
    if (dev) setupDevice(dev);
    if ($("#chart-time")) setupLatency();
  });
})();
