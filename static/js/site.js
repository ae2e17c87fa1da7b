// Copy buttons: <button data-copy="#selector"> copies that element's text (used for a new key, shown once).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (plain http on a LAN host): select the text so Ctrl+C works.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

// htmx leaves the page as it was on an error response; say so instead of failing silently.
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  const reason = status === 403 ? "You do not have permission to do that."
    : status === 404 ? "That no longer exists; reload the page."
    : `Something went wrong (HTTP ${status}). Reload the page and try again.`;
  let box = document.getElementById("htmx-error");
  if (!box) {
    box = document.createElement("div");
    box.id = "htmx-error";
    box.className = "alert alert-error";
    box.setAttribute("role", "alert");
    document.querySelector("main").prepend(box);
  }
  box.textContent = reason;
});
