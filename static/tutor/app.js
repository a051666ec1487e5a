// Typeset math (KaTeX) in whatever the server just swapped in, and keep the stream cursor honest.
(function () {
  function typeset(root) {
    if (!window.katex) return;
    root.querySelectorAll(".math:not([data-typeset])").forEach(function (el) {
      var tex = el.textContent;
      try {
        window.katex.render(tex, el, {
          displayMode: el.classList.contains("block") || el.tagName === "DIV",
          throwOnError: false,
        });
      } catch (e) { /* leave the TeX as text */ }
      el.setAttribute("data-typeset", "1");
    });
  }
  function all() { typeset(document); }
  document.addEventListener("DOMContentLoaded", all);
  window.addEventListener("load", all);
  document.addEventListener("htmx:wsAfterMessage", all);
  document.addEventListener("htmx:afterSwap", all);
  document.addEventListener("htmx:oobAfterSwap", all);
  // Count frames, so tests can wait for the socket's first stage (it replaces the page's stage on connect).
  document.addEventListener("htmx:wsAfterMessage", function () {
    window.tutorFrames = (window.tutorFrames || 0) + 1;
  });
  // Count streamed increments so tests (and curious people) can see the explanation arrive piece by piece.
  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    var msg = evt.detail && evt.detail.message;
    if (typeof msg === "string" && msg.indexOf('id="explanation-stream"') !== -1) {
      window.tutorStreamChunks = (window.tutorStreamChunks || 0) + 1;
    }
  });
})();
