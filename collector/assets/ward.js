// Keyboard shortcuts for the daily queue and an alert page. Every action also works without this
// script: these keys only move focus and click the same controls.
//   j / k: next / previous alert    o or Enter: open it    x: select it for a bulk action
//   on an alert page, 1-5 choose a triage outcome and move to the note.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target.tagName;
    return t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || e.target.isContentEditable;
  }
  document.addEventListener("keydown", function (e) {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr.row"));
    var at = rows.findIndex(function (r) { return r.classList.contains("kbd"); });
    function go(i) {
      if (!rows.length) return;
      i = Math.max(0, Math.min(rows.length - 1, i));
      if (at >= 0) rows[at].classList.remove("kbd");
      rows[i].classList.add("kbd");
      var link = rows[i].querySelector("a");
      if (link) link.focus();
    }
    if (e.key === "j") { go(at + 1); e.preventDefault(); }
    else if (e.key === "k") { go(at - 1); e.preventDefault(); }
    else if (e.key === "x" && at >= 0) {
      var box = rows[at].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
    } else if (e.key === "o" && at >= 0) {
      var a = rows[at].querySelector("a"); if (a) a.click();
    } else if (/^[1-5]$/.test(e.key)) {
      var choice = document.querySelector("input[name=status][data-key='" + e.key + "']");
      if (choice) { choice.checked = true; var note = document.getElementById("note"); if (note) note.focus(); e.preventDefault(); }
    }
  });
})();
