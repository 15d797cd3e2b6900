/* Gnomon UI: small progressive enhancements (no framework). Runs on load and on every htmx swap. */
(function () {
  "use strict";

  /* ---------- plotly figures embedded as JSON (<div class="js-plot" data-figure="script-id">) ---------- */
  function renderPlots(root) {
    root.querySelectorAll(".js-plot:not([data-rendered])").forEach(function (el) {
      var data = document.getElementById(el.dataset.figure);
      if (!data) return;
      if (!window.Plotly) {
        el.textContent = "The plotting library is missing (run scripts/vendor_static.sh).";
        return;
      }
      var fig = JSON.parse(data.textContent);
      el.setAttribute("data-rendered", "1");
      window.Plotly.newPlot(el, fig.data, fig.layout || {}, { responsive: true, displaylogo: false }).then(function () {
        /* phase diagrams: a point whose hover text names a material opens its page */
        el.on("plotly_click", function (ev) {
          var point = ev.points && ev.points[0];
          var text = point && (point.hovertext || point.text || "");
          var match = /gn-\d+/.exec(String(text));
          if (match) window.location.href = "/materials/" + match[0] + "/";
        });
      });
    });
  }

  /* ---------- 3D structure viewer (3Dmol.js) ---------- */
  var viewers = {};
  function drawStructure(id, supercell) {
    var entry = viewers[id];
    var v = entry.viewer;
    v.clear();
    v.addModel(entry.cif, "cif");
    v.setStyle({}, { sphere: { scale: 0.3, colorscheme: "Jmol" }, stick: { radius: 0.12, colorscheme: "Jmol" } });
    v.addUnitCell();
    if (supercell) v.replicateUnitCell(2, 2, 2);
    v.zoomTo();
    v.rotate(-20, "x");
    v.rotate(25, "y");
    v.zoom(1.15);
    v.render();
  }
  function initViewers(root) {
    root.querySelectorAll(".js-structure-viewer:not([data-rendered])").forEach(function (el) {
      var data = document.getElementById(el.dataset.cif);
      if (!data) return;
      if (!window.$3Dmol) {
        el.textContent = "The 3D viewer library is missing (run scripts/vendor_static.sh).";
        return;
      }
      el.setAttribute("data-rendered", "1");
      viewers[el.id] = { viewer: window.$3Dmol.createViewer(el, { backgroundColor: "white" }), cif: JSON.parse(data.textContent) };
      drawStructure(el.id, false);
    });
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest(".js-viewer-reset, .js-viewer-supercell");
    if (!btn || !viewers[btn.dataset.viewer]) return;
    if (btn.classList.contains("js-viewer-supercell")) {
      var on = btn.getAttribute("aria-pressed") !== "true";
      btn.setAttribute("aria-pressed", on ? "true" : "false");
      drawStructure(btn.dataset.viewer, on);
    } else {
      drawStructure(btn.dataset.viewer, false);
      var sc = document.querySelector('.js-viewer-supercell[data-viewer="' + btn.dataset.viewer + '"]');
      if (sc) sc.setAttribute("aria-pressed", "false");
    }
  });

  /* ---------- periodic table: none → required → excluded → none ---------- */
  var NEXT = { "": "included", included: "excluded", excluded: "" };
  function initPeriodicTable(table) {
    if (table.dataset.ready) return;
    table.dataset.ready = "1";
    var form = table.closest("form");
    var buttons = Array.prototype.slice.call(table.querySelectorAll("button.el"));
    var restrict = form.querySelector(".js-restrict");
    var summary = form.querySelector(".js-selection");

    function symbols(state) {
      return buttons.filter(function (b) { return b.dataset.state === state; }).map(function (b) { return b.dataset.el; });
    }
    function sync(fire) {
      var inc = symbols("included"), exc = symbols("excluded");
      var only = restrict && restrict.checked;
      form.querySelector("#f-elements").value = only ? "" : inc.join(",");
      form.querySelector("#f-only").value = only ? inc.join(",") : "";
      form.querySelector("#f-exclude").value = exc.join(",");
      var text = [];
      if (inc.length) text.push((only ? "Only " : "Contains ") + inc.join(", "));
      if (exc.length) text.push("excludes " + exc.join(", "));
      summary.textContent = text.length ? text.join("; ") : "No element filter.";
      if (fire) {
        form.querySelector("#page-input").value = "";
        form.dispatchEvent(new Event("change", { bubbles: true }));
      }
    }
    function setState(b, state) {
      b.dataset.state = state;
      b.classList.toggle("is-included", state === "included");
      b.classList.toggle("is-excluded", state === "excluded");
      b.setAttribute("aria-pressed", state === "included" ? "true" : "false");
      b.setAttribute("aria-label", b.dataset.name + " (" + b.dataset.el + ")" + (state ? ": " + (state === "included" ? "required" : "excluded") : ""));
    }
    function focusButton(b) {
      buttons.forEach(function (x) { x.tabIndex = -1; });
      b.tabIndex = 0;
      b.focus();
    }
    function neighbour(b, dr, dc) {
      var r = +b.dataset.row, c = +b.dataset.col, best = null, bestScore = Infinity;
      buttons.forEach(function (x) {
        var xr = +x.dataset.row, xc = +x.dataset.col;
        if (dr !== 0 && Math.sign(xr - r) !== dr) return;
        if (dc !== 0 && (xr !== r || Math.sign(xc - c) !== dc)) return;
        var score = dr !== 0 ? Math.abs(xr - r) * 100 + Math.abs(xc - c) : Math.abs(xc - c);
        if (score < bestScore) { bestScore = score; best = x; }
      });
      return best;
    }
    buttons.forEach(function (b) {
      setState(b, b.dataset.state || "");
      b.addEventListener("click", function () {
        setState(b, NEXT[b.dataset.state || ""]);
        buttons.forEach(function (x) { x.tabIndex = -1; });
        b.tabIndex = 0;
        sync(true);
      });
      b.addEventListener("keydown", function (ev) {
        var moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
        var target = null;
        if (moves[ev.key]) target = neighbour(b, moves[ev.key][0], moves[ev.key][1]);
        else if (ev.key === "Home") target = buttons[0];
        else if (ev.key === "End") target = buttons[buttons.length - 1];
        else return;
        ev.preventDefault();
        if (target) focusButton(target);
      });
    });
    if (restrict) restrict.addEventListener("change", function () { sync(false); });
    var clear = form.querySelector(".js-ptable-clear");
    if (clear) clear.addEventListener("click", function () { buttons.forEach(function (b) { setState(b, ""); }); sync(true); });
    sync(false);
  }

  /* ---------- catalog browser: sort headers and pager drive the filter form, so one request carries all state ---------- */
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest("#results a[data-ordering], #results a[data-page]");
    var form = document.getElementById("filters");
    if (!link || !form || !window.htmx || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    if (link.dataset.ordering) {
      form.querySelector("#ordering-input").value = link.dataset.ordering;
      form.querySelector("#page-input").value = "";
    } else {
      form.querySelector("#page-input").value = link.dataset.page;
    }
    window.htmx.trigger(form, "submit");
  });
  document.addEventListener("input", function (ev) { resetPage(ev.target); });
  document.addEventListener("change", function (ev) {
    if (ev.target.id === "q") { ev.stopPropagation(); return; } /* typing already searched (input event) */
    resetPage(ev.target);
  }, true);
  function resetPage(target) {
    var form = target && target.closest && target.closest("#filters");
    if (form && target.id !== "page-input") form.querySelector("#page-input").value = "";
  }

  /* ---------- leave empty filter fields out of the URL ---------- */
  document.addEventListener("htmx:configRequest", function (ev) {
    if (ev.detail.verb !== "get") return;
    var p = ev.detail.parameters;
    var defaults = {};
    ev.detail.elt.querySelectorAll("[data-default][name]").forEach(function (el) {
      if (el.value === el.dataset.default) defaults[el.name] = true;
    });
    if (p instanceof FormData) {
      Array.from(new Set(p.keys())).forEach(function (k) { if (defaults[k] || p.getAll(k).every(function (v) { return v === ""; })) p.delete(k); });
    } else {
      Object.keys(p).forEach(function (k) { if (defaults[k] || p[k] === "" || (Array.isArray(p[k]) && p[k].every(function (v) { return v === ""; }))) delete p[k]; });
    }
  });

  function init(root) {
    renderPlots(root);
    initViewers(root);
    root.querySelectorAll(".js-ptable").forEach(initPeriodicTable);
  }
  /* gnomon.js and the libraries are deferred scripts: all have run when DOMContentLoaded fires. */
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function () { init(document); });
})();
