// rolegate console: the one script, for the copy buttons. Without it (or without clipboard
// access) the pages work the same: the value is in a read-only field, selected for copying.
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById(button.getAttribute("data-status"));
  if (!field) { return; }
  function say(text) { if (status) { status.textContent = text; } }
  function selectText() {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () {
        say("Copied to the clipboard.");
      }, function () {
        selectText();
        say("Selected: press Ctrl+C (or Cmd+C) to copy.");
      });
      return;
    }
    selectText();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    say(copied ? "Copied to the clipboard." : "Selected: press Ctrl+C (or Cmd+C) to copy.");
  });
});
