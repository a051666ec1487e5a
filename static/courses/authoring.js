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
