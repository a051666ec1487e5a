// The pages' own script, on top of htmx and its websocket extension (which swaps every element a frame carries
// into the element with the same id). It typesets maths with KaTeX in whatever arrives, shows the paragraph of an
// explanation still being written without its TeX source, and on the session page moves focus to the new content
// after each of the student's actions, reads the feedback out politely and keeps one message area, cleared when the
// student acts again.
(function () {
  "use strict";

  // Words for TeX, for a choice's accessible name: KaTeX's MathML reads well in running text, but a radio button
  // whose label is only a formula gets no name from it in every browser and checker.
  var SAY = {
    cdot: "times", times: "times", div: "divided by", pm: "plus or minus", le: "less than or equal to",
    leq: "less than or equal to", ge: "greater than or equal to", geq: "greater than or equal to", ne: "not equal to",
    neq: "not equal to", approx: "approximately", infty: "infinity", to: "to", lim: "limit", ln: "natural log",
    circ: "degrees", cup: "union", cap: "intersection", in: "in", emptyset: "empty set",
  };

  function speech(tex) {
    var s = tex;
    for (var i = 0; i < 4; i++) { // innermost braces first
      s = s.replace(/\^\s*\{([^{}]*)\}|\^\s*(\w)/g, " to the power $1$2 ");
      s = s.replace(/_\s*\{([^{}]*)\}|_\s*(\w)/g, " sub $1$2 ");
      s = s.replace(/\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, " $1 over $2 ");
      s = s.replace(/\\sqrt\s*\{([^{}]*)\}/g, " square root of $1 ");
    }
    s = s.replace(/\\(left|right|displaystyle|textstyle|mathrm|text|operatorname|quad|qquad)\b|\\[,;:!]/g, " ");
    s = s.replace(/\\([a-zA-Z]+)/g, function (m, name) { return " " + (SAY[name] || name) + " "; });
    s = s.replace(/(\S)\s*-\s*/g, "$1 minus ").replace(/^\s*-\s*/, "minus ");
    return s.replace(/[{}]/g, " ").replace(/\s+/g, " ").trim();
  }

  function typesetMath(el) {
    if (!window.katex) return;
    var tex = el.textContent;
    try {
      window.katex.render(tex, el, {
        displayMode: el.classList.contains("block") || el.tagName === "DIV",
        throwOnError: false,
      });
    } catch (e) { /* KaTeX could not read it: the TeX stays as text */ }
    el.setAttribute("data-typeset", "1");
    if (el.closest("label")) {
      var mathml = el.querySelector(".katex-mathml");
      if (mathml) mathml.setAttribute("aria-hidden", "true");
      var said = document.createElement("span");
      said.className = "visually-hidden";
      said.textContent = speech(tex);
      el.appendChild(said);
    }
  }

  function typeset(root) {
    root.querySelectorAll(".math:not([data-typeset])").forEach(typesetMath);
    // A formula wider than a phone scrolls in place; keyboard users can then reach it to scroll it too.
    root.querySelectorAll(".katex-display:not([tabindex])").forEach(function (formula) {
      if (formula.scrollWidth > formula.clientWidth + 1) formula.setAttribute("tabindex", "0");
    });
  }

  // --- text still arriving ------------------------------------------------------------------------------
  // Finished blocks of an explanation arrive typeset in #explanation-typeset, each with the length of text it
  // covers; the text as generated accumulates in the hidden #explanation-stream. The rest, the paragraph being
  // written, is shown with its closed formulas typeset and bold set, and a formula still open held back until it
  // closes, so its TeX source never shows.
  var TAIL = /\$\$([\s\S]+?)\$\$|\$([^$\n]+?)\$|\*\*/g;

  function showTail() {
    var stream = document.getElementById("explanation-stream");
    var tail = document.getElementById("explanation-tail");
    if (!stream || !tail) return;
    var covered = 0;
    document.querySelectorAll("#explanation-typeset [data-source-length]").forEach(function (block) {
      covered += parseInt(block.getAttribute("data-source-length"), 10) || 0;
    });
    tail.replaceChildren(formatted(Array.from(stream.textContent).slice(covered).join("").trim()));
  }

  // The TA's reply streams as text (#ta-stream) until its card arrives rendered: shown formatted the same way.
  function showTAStream() {
    var stream = document.getElementById("ta-stream");
    if (!stream) return;
    var shown = document.getElementById("ta-stream-shown");
    if (!shown) {
      shown = document.createElement("div");
      shown.id = "ta-stream-shown";
      shown.className = "stream";
      stream.parentNode.insertBefore(shown, stream);
      stream.classList.add("visually-hidden");
      stream.setAttribute("aria-hidden", "true");
    }
    shown.replaceChildren(formatted(stream.textContent.trim()));
  }

  function formatted(text) {
    text = text.replace(/^> ?/gm, ""); // a quotation's marker: the finished text sets it as a quotation
    var out = document.createDocumentFragment();
    var into = out;
    var last = 0;
    var found;
    TAIL.lastIndex = 0;
    while ((found = TAIL.exec(text))) {
      into.appendChild(document.createTextNode(text.slice(last, found.index)));
      if (found[0] === "**") {
        if (into === out) {
          into = out.appendChild(document.createElement("strong"));
        } else {
          into = out;
        }
      } else {
        var math = document.createElement("span");
        math.className = "math" + (found[1] !== undefined ? " block" : "");
        math.textContent = found[1] !== undefined ? found[1] : found[2];
        typesetMath(math);
        into.appendChild(math);
      }
      last = TAIL.lastIndex;
    }
    var rest = text.slice(last);
    var open = rest.indexOf("$");
    into.appendChild(document.createTextNode(open === -1 ? rest : rest.slice(0, open)));
    return out;
  }

  // --- focus, announcements and the message area (the session page) ---------------------------------------
  var sent = null; // the action the student just sent, until the frame that answers it arrives
  var focusWasInStage = false;
  var typed = null; // what the student had typed, kept when the same question comes back (a hint)

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region || !text) return;
    region.textContent = "";
    // A change after an empty region is read out even when the text is the same as last time.
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function focusOn(el) {
    if (!el) return;
    if (!el.matches("a, button, input, select, textarea, [tabindex]")) el.setAttribute("tabindex", "-1");
    el.focus();
  }

  function focusLost() {
    var active = document.activeElement;
    return !active || active === document.body || !document.contains(active);
  }

  function newContent(stage, action) {
    if (action === "hint") {
      var hints = stage.querySelectorAll(".hints li");
      if (hints.length) return hints[hints.length - 1];
    }
    return stage.querySelector("[data-autofocus]") || document.getElementById("concept-title");
  }

  document.addEventListener("htmx:wsConfigSend", function (evt) {
    var params = (evt.detail && evt.detail.parameters) || {};
    sent = params.action || "message";
    var notice = document.getElementById("notice");
    if (notice) notice.textContent = "";
  });

  document.addEventListener("htmx:wsBeforeMessage", function () {
    var stage = document.getElementById("stage");
    focusWasInStage = !!(stage && stage.contains(document.activeElement));
    var input = document.getElementById("answer-input");
    var form = document.getElementById("answer-form");
    typed = input && form && input.value ? { item: form.elements.item.value, text: input.value } : null;
  });

  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    var message = (evt.detail && evt.detail.message) || "";
    typeset(document);
    showTail();
    showTAStream();
    var stage = document.getElementById("stage");
    if (!stage) return;
    if (message.indexOf('id="stage"') !== -1) {
      var input = document.getElementById("answer-input");
      var form = document.getElementById("answer-form");
      if (typed && input && form && !input.value && form.elements.item.value === typed.item) {
        input.value = typed.text;
      }
      if (sent) {
        focusOn(newContent(stage, sent));
        var said = stage.querySelector("[data-announce]"); // its value, or else its text
        if (said) announce(said.getAttribute("data-announce") || said.textContent.replace(/\s+/g, " ").trim());
      } else if (focusWasInStage && focusLost()) {
        focusOn(newContent(stage, null)); // the socket reconnected and re-sent the stage under the focus
      }
      sent = null;
    } else if (message.indexOf('id="notice"') !== -1) {
      sent = null; // the action was refused; the message says why, and focus stays where the student was
    } else if (message.indexOf("data-complete") !== -1) {
      var done = document.querySelector("#explanation[data-announce]");
      if (done) announce(done.getAttribute("data-announce"));
      if (focusLost()) focusOn(document.getElementById("explain-heading"));
    }
  });

  function all() { typeset(document); }
  document.addEventListener("DOMContentLoaded", all);
  document.addEventListener("htmx:afterSwap", all);
  document.addEventListener("htmx:oobAfterSwap", all);
})();
