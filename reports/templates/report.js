// argmax-audit report: filters for findings and cases, matrix cells that filter, copy buttons.
// Reads data-* attributes and writes text only; the page never builds markup from run data.
(function () {
  "use strict";
  var SEP = "\n";

  function matches(element, filters) {
    return Object.keys(filters).every(function (key) {
      var wanted = filters[key];
      if (!wanted) { return true; }
      return (element.dataset[key] || "").split(SEP).indexOf(wanted) !== -1;
    });
  }

  function setup(barId, itemSelector, noun) {
    var bar = document.getElementById(barId);
    if (!bar) { return null; }
    var selects = Array.prototype.slice.call(bar.querySelectorAll("select[data-filter]"));
    var items = Array.prototype.slice.call(document.querySelectorAll(itemSelector));
    var shown = bar.querySelector(".shown");

    function apply() {
      var filters = {};
      selects.forEach(function (s) { filters[s.dataset.filter] = s.value; });
      var count = 0;
      items.forEach(function (item) {
        var visible = matches(item, filters);
        item.hidden = !visible;
        if (visible) { count += 1; }
      });
      shown.textContent = count + " of " + items.length + " " + noun;
      document.querySelectorAll(".kind-group").forEach(function (group) {
        group.hidden = !group.querySelector("details.finding:not([hidden])");
      });
    }

    function set(values) {
      selects.forEach(function (s) {
        var value = values[s.dataset.filter] || "";
        var known = Array.prototype.some.call(s.options, function (o) { return o.value === value; });
        s.value = known ? value : "";
      });
      apply();
    }

    selects.forEach(function (s) { s.addEventListener("change", apply); });
    bar.querySelector(".clear").addEventListener("click", function () { set({}); });
    apply();
    return set;
  }

  var filterFindings = setup("finding-filters", "details.finding", "entries");
  setup("case-filters", "tr.case-row", "cases");

  document.querySelectorAll("a.filter-link").forEach(function (link) {
    link.addEventListener("click", function () {
      if (filterFindings) {
        filterFindings({ targets: link.dataset.target, check: link.dataset.check });
        document.querySelectorAll("details.finding:not([hidden])").forEach(function (d) { d.open = true; });
      }
    });
  });

  function reveal(id) {
    var target = document.getElementById(id);
    if (!target || target.tagName !== "DETAILS") { return; }
    var card = target.closest("details.finding");
    if (card && card.hidden && filterFindings) { filterFindings({}); }
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
  }

  document.querySelectorAll("a.jump").forEach(function (link) {
    link.addEventListener("click", function () { reveal(link.getAttribute("href").slice(1)); });
  });
  if (location.hash) { reveal(decodeURIComponent(location.hash.slice(1))); }

  function copyText(text, button) {
    function done(ok) {
      button.textContent = ok ? "copied" : "select and copy";
      setTimeout(function () { button.textContent = "copy"; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    done(ok);
  }

  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function (event) {
      var code = button.closest(".repro").querySelector("code");
      if (event) { event.preventDefault(); }
      copyText(code.textContent, button);
    });
  });
})();
