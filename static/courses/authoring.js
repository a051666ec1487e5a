// Item form: show only the fields that the chosen kind of item uses. Everything stays in the form (hidden
// fields keep their values), so switching kinds back and forth loses nothing.
(function () {
  function sync(form) {
    var select = form.querySelector("select[name=kind]");
    if (!select) return;
    form.querySelectorAll("[data-kinds]").forEach(function (el) {
      el.hidden = el.getAttribute("data-kinds").split(" ").indexOf(select.value) === -1;
    });
  }
  document.addEventListener("change", function (evt) {
    if (evt.target.name === "kind" && evt.target.form) sync(evt.target.form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form#item-form").forEach(sync);
  });
})();

// Concept form: the prerequisites list (hundreds of concepts in an imported course) filtered by title as the author
// types, and the chosen ones named above it as they are ticked.
(function () {
  document.addEventListener("input", function (evt) {
    if (!evt.target.classList.contains("prerequisites-filter")) return;
    var query = evt.target.value.trim().toLowerCase();
    var list = document.getElementById(evt.target.getAttribute("aria-controls"));
    list.querySelectorAll(":scope > div").forEach(function (option) {
      option.hidden = query !== "" && option.textContent.toLowerCase().indexOf(query) === -1;
    });
  });
  document.addEventListener("change", function (evt) {
    if (evt.target.name !== "prerequisites") return;
    var field = evt.target.closest("fieldset.prerequisites");
    var chosen = [];
    field.querySelectorAll("input[name=prerequisites]:checked").forEach(function (box) {
      chosen.push(box.closest("label").textContent.trim());
    });
    field.querySelector("#prerequisites-chosen").textContent =
      chosen.length ? "Chosen: " + chosen.join(", ") + "." : "None chosen: a starting point.";
  });
})();
