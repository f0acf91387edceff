// Idle logoff: warn a minute before the server logs an idle user off, offer to stay, then go to the login page.
// The server decides (accounts.middleware.IdleTimeoutMiddleware); this only keeps the user from being surprised.
// A check asks the server how long is left without counting as activity, so work in another tab keeps this one.
(() => {
  const body = document.body;
  const idle = Number(body.dataset.idleSeconds || 0);
  const sessionUrl = body.dataset.sessionUrl;
  const loginUrl = body.dataset.loginUrl;
  if (!idle || !sessionUrl) return;
  const warnBefore = Math.min(60, Math.floor(idle / 2));
  let timer = null;
  let banner = null;

  function csrfToken() {
    try {
      return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function goToLogin() {
    const next = window.location.pathname + window.location.search;
    window.location.assign(`${loginUrl}?next=${encodeURIComponent(next)}`);
  }

  function schedule(seconds) {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, Math.max(1, seconds) * 1000);
  }

  function hideBanner() {
    if (banner) banner.remove();
    banner = null;
  }

  function showBanner(remaining) {
    if (!banner) {
      banner = document.createElement("div");
      banner.className = "idle-warning";
      banner.setAttribute("role", "alertdialog");
      banner.setAttribute("aria-live", "assertive");
      const text = document.createElement("span");
      text.className = "idle-text";
      const stay = document.createElement("button");
      stay.type = "button";
      stay.className = "primary idle-stay";
      stay.textContent = "Stay logged in";
      stay.addEventListener("click", keepAlive);
      banner.append(text, stay);
      body.prepend(banner);
      stay.focus();
    }
    banner.querySelector(".idle-text").textContent =
      `You will be logged off in ${remaining} seconds because nothing happened on this page.`;
  }

  async function ask(method) {
    const response = await fetch(sessionUrl, {
      method,
      credentials: "same-origin",
      headers: method === "POST" ? { "X-CSRFToken": csrfToken() } : {},
      redirect: "manual",
    });
    if (!response.ok) return 0;
    const data = await response.json();
    return Number(data.remaining || 0);
  }

  async function check() {
    let remaining;
    try {
      remaining = await ask("GET");
    } catch (error) {
      schedule(15); // the server did not answer: try again soon, it still decides
      return;
    }
    if (remaining <= 0) {
      goToLogin();
    } else if (remaining > warnBefore) {
      hideBanner();
      schedule(remaining - warnBefore);
    } else {
      showBanner(remaining);
      schedule(Math.min(remaining, 5));
    }
  }

  async function keepAlive() {
    try {
      const remaining = await ask("POST");
      if (remaining <= 0) return goToLogin();
      hideBanner();
      schedule(remaining - warnBefore);
    } catch (error) {
      schedule(5);
    }
  }

  schedule(idle - warnBefore);
})();
