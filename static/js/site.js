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

// Filter bars marked data-autosubmit reload the page as soon as a choice changes (Apply stays for
// keyboard users and browsers without JS).
// Fields marked data-manual (a custom date range) wait for Apply; picking a date selects "Custom".
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-custom-range]")) {
    const custom = document.getElementById("range-custom");
    if (custom) custom.checked = true;
  }
  if (event.target.matches("[data-manual]")) return;
  const form = event.target.closest("form[data-autosubmit]");
  if (form) form.requestSubmit();
});

// The phone navigation: the Menu button shows and hides the main nav (CSS hides it under 760 px).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-nav-toggle]");
  if (!button) return;
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(open));
  document.documentElement.classList.toggle("nav-open", open);
});

// Theme: "light", "dark" or unset (follow prefers-color-scheme). The choice is applied before paint by
// the inline script in base.html; this button cycles it and tells charts to redraw.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-theme-toggle]");
  if (!button) return;
  const root = document.documentElement;
  const systemDark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  const current = root.dataset.theme || (systemDark ? "dark" : "light");
  const next = current === "dark" ? "light" : "dark";
  root.dataset.theme = next;
  try { localStorage.setItem("theme", next); } catch { /* private mode: the choice lasts this page */ }
  button.setAttribute("aria-pressed", String(next === "dark"));
  document.dispatchEvent(new Event("themechange"));
});

// The toggle's pressed state reflects the theme in use, whether chosen or inherited from the OS.
document.addEventListener("DOMContentLoaded", () => {
  const root = document.documentElement;
  const dark = root.dataset.theme ? root.dataset.theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.querySelectorAll("[data-theme-toggle]").forEach((b) => b.setAttribute("aria-pressed", String(dark)));
});
