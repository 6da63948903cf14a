// rollbook's dashboard: small enhancements over pages that work without them.
"use strict";

document.querySelectorAll("[data-autosubmit]").forEach((el) => {
  el.addEventListener("change", () => el.form.submit());
});

document.querySelectorAll("[data-select-on-focus]").forEach((el) => {
  el.addEventListener("focus", () => el.select());
});

// Drag and drop onto the upload form's drop zone.
document.querySelectorAll("[data-upload-form]").forEach((form) => {
  const zone = form.querySelector("[data-dropzone]");
  const input = form.querySelector("input[type=file]");
  const chosen = form.querySelector("[data-chosen]");
  const show = () => {
    chosen.textContent = input.files.length ? "Chosen: " + input.files[0].name : "";
    zone.classList.toggle("has-file", input.files.length > 0);
  };
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach((type) =>
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    })
  );
  ["dragleave", "drop"].forEach((type) =>
    zone.addEventListener(type, () => zone.classList.remove("over"))
  );
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      show();
    }
  });
});

// The phone change's source and reason: shown once the phone is changed.
document.querySelectorAll("[data-phone-input]").forEach((input) => {
  const change = input.form.querySelector("[data-phone-change]");
  if (!change) return;
  const reason = change.querySelector("input[name=reason]");
  const initial = input.value;
  const update = () => {
    change.hidden = input.value === initial && !reason.value;
  };
  input.addEventListener("input", update);
  update();
});

// A running job's progress bar, until the job ends; then the page shows its result.
document.querySelectorAll("[data-job]").forEach((box) => {
  const bar = box.querySelector("[data-progress]");
  const text = box.querySelector("[data-progress-text]");
  const poll = async () => {
    let state;
    try {
      const response = await fetch(`/jobs/${box.dataset.job}/status`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      state = await response.json();
    } catch (error) {
      setTimeout(poll, 2000);
      return;
    }
    if (state.status === "done" || state.status === "failed") {
      window.location.reload();
      return;
    }
    if (state.total) {
      bar.max = state.total;
      bar.value = state.done || 0;
    }
    text.textContent = state.text;
    setTimeout(poll, 400);
  };
  poll();
});

// The mapping table: a column chosen by hand says so at once (the server checks it on submit).
document.querySelectorAll("[data-mapping-row]").forEach((row) => {
  const select = row.querySelector("select");
  const why = row.querySelector("[data-why]");
  select.addEventListener("change", () => {
    const ignored = select.selectedIndex === 0;
    row.classList.toggle("unmapped", ignored);
    why.textContent = ignored ? "not imported" : "your choice";
  });
});
