// Before/after viewer: layer choice (photo or overlay), side by side, slider or blink comparison.
// Both images are in the baseline's canonical frame, so they overlay pixel for pixel.
(function () {
  "use strict";
  var viewer = document.getElementById("viewer");
  if (!viewer) { return; }
  var stage = document.getElementById("stage");
  var before = document.getElementById("img-before");
  var after = document.getElementById("img-after");
  var afterPane = stage.querySelector(".pane.after");
  var slider = document.getElementById("slider");
  var blink = document.getElementById("blink-toggle");

  function datasetKey(side, layer) {
    // data-baseline-pigment-spots -> dataset.baselinePigmentSpots
    return (side + "-" + layer).replace(/-([a-z])/g, function (_, c) { return c.toUpperCase(); });
  }

  function showLayer(layer) {
    before.src = viewer.dataset[datasetKey("baseline", layer)];
    after.src = viewer.dataset[datasetKey("followup", layer)];
  }

  function applySlider() {
    afterPane.style.clipPath = "inset(0 0 0 " + slider.value + "%)";
  }

  function setMode(mode) {
    stage.className = "stage " + mode;
    slider.hidden = mode !== "slider";
    blink.hidden = mode !== "blink";
    afterPane.style.clipPath = "";
    afterPane.classList.remove("hidden");
    if (mode === "slider") { applySlider(); }
  }

  viewer.querySelectorAll("input[name=layer]").forEach(function (input) {
    input.addEventListener("change", function () { showLayer(input.value); });
  });
  viewer.querySelectorAll("input[name=mode]").forEach(function (input) {
    input.addEventListener("change", function () { setMode(input.value); });
  });
  slider.addEventListener("input", applySlider);
  blink.addEventListener("click", function () { afterPane.classList.toggle("hidden"); });
  document.addEventListener("keydown", function (event) {
    if (event.key === " " && !blink.hidden) { event.preventDefault(); afterPane.classList.toggle("hidden"); }
  });
  showLayer("photo");
  setMode("side");
  viewer.dataset.ready = "true";
}());
