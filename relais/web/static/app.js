// Relais "Suivi des flux": the only script (no inline handlers). Actions ask for a confirmation (their
// form's data-confirm text); the flow list announces new flows (below).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// Relais "Suivi des flux": the only script. On the first page of the flow list (newest first), ask the
// server every 10 s how many flows matching the same filters arrived since the page was drawn, and
// say so (a link to refresh): nothing moves under the reader's eyes.
(function () {
  var table = document.querySelector("table.flows[data-newest]");
  var notice = document.getElementById("new-flows");
  if (!table || !notice || !table.dataset.newest) return;
  var params = new URLSearchParams(window.location.search);
  params.set("newest", table.dataset.newest);
  function poll() {
    fetch("/flows/poll?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { new: 0 }; })
      .then(function (body) {
        if (body.new > 0) {
          notice.hidden = false;
          notice.querySelector("a").textContent = notice.querySelector("a").textContent.replace(/ \(\d+\)$/, "") + " (" + body.new + ")";
        }
      })
      .catch(function () {});
  }
  window.setInterval(poll, 10000);
})();
