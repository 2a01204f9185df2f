// The playground page: draws the channel the fake Discord holds and sends what the person does.
// State comes by long poll (/api/state?since=version). A message is redrawn only when it changed,
// and its reactions separately, so a playing audio or video keeps playing when someone rates it.
"use strict";

const $ = (id) => document.getElementById(id);
const drawn = new Map(); // message id -> {key, reactionsKey, element}
const dismissed = new Set(); // ephemeral messages the person dismissed
let version = "";
let suggestions = [];
let selected = -1;
let stale = false; // the text changed since the popup was filled: Enter sends, it does not pick
let attachedFile = null;

// --- talking to the playground server --------------------------------------------------------
async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  return response.json().catch(() => ({ ok: false, error: `The playground answered ${response.status}.` }));
}

async function poll() {
  let failures = 0;
  for (;;) {
    try {
      const response = await fetch(`/api/state?since=${encodeURIComponent(version)}`);
      if (!response.ok) throw new Error(String(response.status));
      const state = await response.json();
      failures = 0;
      showBanner("");
      if (state.version !== version) {
        version = state.version;
        render(state);
      }
    } catch (error) {
      failures += 1;
      if (failures > 1) showBanner("Lost contact with the playground. Is `python -m playground` still running?");
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * failures)));
    }
  }
}

function showBanner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text;
}

// --- drawing ---------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Discord's markdown, the parts the bot uses: code, bold, italics, links, small text, quotes.
function markdown(text) {
  let html = escapeHtml(text || "");
  html = html.replace(/```(?:\w*\n)?([\s\S]*?)```/g, (_, code) => `<pre>${code}</pre>`);
  html = html.replace(/`([^`\n]+)`/g, "<code>$1</code>");
  html = html.replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
  html = html.replace(/(^|[^*])\*([^*\n]+)\*/g, "$1<i>$2</i>");
  html = html.replace(/(^|\s)_([^_\n]+)_(?=\s|$)/g, "$1<i>$2</i>");
  html = html.replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener">$1</a>');
  html = html.replace(/&lt;(https?:[^&\s]+)&gt;/g, '<a href="$1" target="_blank" rel="noopener">$1</a>');
  html = html.replace(/^-# (.*)$/gm, '<small class="time">$1</small>');
  html = html.replace(/^&gt; (.*)$/gm, '<span class="quote">│ $1</span>');
  return html;
}

function rich(tag, cls, text) {
  const node = el(tag, { class: cls });
  node.innerHTML = markdown(text);
  return node;
}

function fileUrl(message, filename) {
  const found = message.attachments.find((a) => a.filename === filename);
  return found ? found.url : null;
}

function drawEmbed(message, embed, shownInEmbed) {
  const colour = embed.color !== undefined ? `#${embed.color.toString(16).padStart(6, "0")}` : null;
  const fields = (embed.fields || []).map((f) => el("div", { class: f.inline === false ? "embed-field wide" : "embed-field" },
    el("div", { class: "embed-field-name" }, f.name), rich("div", "embed-field-value", f.value)));
  let image = null;
  if (embed.image && embed.image.url) {
    let url = embed.image.url;
    if (url.startsWith("attachment://")) {
      const name = url.slice("attachment://".length);
      shownInEmbed.add(name);
      url = fileUrl(message, name);
    }
    if (url) image = el("div", { class: "embed-image" }, el("img", { src: url, alt: "piano roll", loading: "lazy" }));
  }
  return el("div", { class: "embed", style: colour ? `border-left-color:${colour}` : undefined },
    embed.title ? rich("div", "embed-title", embed.title) : null,
    embed.description ? rich("div", "embed-description", embed.description) : null,
    fields.length ? el("div", { class: "embed-fields" }, fields) : null,
    image,
    embed.footer ? el("div", { class: "embed-footer" }, embed.footer.text) : null);
}

function size(bytes) {
  return bytes > 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}

function drawAttachment(a) {
  const ext = a.filename.split(".").pop().toLowerCase();
  if (["mp3", "ogg", "wav"].includes(ext)) {
    return el("div", { class: "audio", "data-file": a.filename },
      el("div", {}, el("a", { href: a.url, download: a.filename }, a.filename), " ", el("span", { class: "size" }, size(a.size))),
      el("audio", { controls: true, preload: "metadata", src: a.url }));
  }
  if (ext === "mp4") return el("video", { controls: true, preload: "metadata", src: a.url, "data-file": a.filename });
  if (["png", "jpg", "jpeg", "gif"].includes(ext)) return el("img", { class: "picture", src: a.url, alt: a.filename, "data-file": a.filename });
  const icon = ext === "mid" || ext === "midi" ? "🎼" : ext === "zip" ? "📦" : "📄";
  return el("div", { class: "file", "data-file": a.filename }, el("span", { class: "icon" }, icon),
    el("div", {}, el("a", { href: a.url, download: a.filename }, a.filename), el("div", { class: "size" }, size(a.size))));
}

const BUTTON_STYLES = { 1: "primary", 2: "secondary", 3: "success", 4: "danger", 5: "link" };

function emojiText(emoji) {
  return emoji ? (emoji.name || "") : "";
}

function drawComponent(message, c) {
  if (c.type === 1) return el("div", { class: "row" }, (c.components || []).map((x) => drawComponent(message, x)));
  if (c.type === 2) {
    const label = [emojiText(c.emoji), c.label].filter(Boolean).join(" ");
    if (c.style === 5) return el("a", { class: "button link", href: c.url, target: "_blank", rel: "noopener" }, label);
    return el("button", { class: `button ${BUTTON_STYLES[c.style] || "secondary"}`, disabled: !!c.disabled,
      "data-custom-id": c.custom_id,
      onclick: () => act("/api/click", { message_id: message.id, custom_id: c.custom_id }) }, label);
  }
  if (c.type === 3) {
    const options = (c.options || []).map((o) => el("option", { value: o.value, title: o.description }, o.label));
    const menu = el("select", { class: "menu", "data-custom-id": c.custom_id, disabled: !!c.disabled,
      onchange: (event) => act("/api/select", { message_id: message.id, custom_id: c.custom_id, values: [event.target.value] }) },
    el("option", { value: "", disabled: true, selected: true }, c.placeholder || "Make a selection"), options);
    return menu;
  }
  return null;
}

function drawMessage(message, state) {
  const isBot = message.author.id === state.bot.id;
  const name = message.author.global_name || message.author.username;
  const time = new Date(message.timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const shownInEmbed = new Set();
  const embeds = (message.embeds || []).map((e) => drawEmbed(message, e, shownInEmbed));
  const files = (message.attachments || []).filter((a) => !shownInEmbed.has(a.filename)).map(drawAttachment);
  const content = message.loading
    ? el("div", { class: "content thinking" }, `${name} is thinking`)
    : message.content ? rich("div", "content", message.content) : null;
  if (content && message.edited && !message.loading) content.append(el("span", { class: "edited" }, "(edited)"));
  const node = el("article", { class: `message${message.ephemeral ? " ephemeral" : ""}${message.loading ? " loading" : ""}`,
    "data-message-id": message.id },
  message.command ? el("div", { class: "used" }, el("b", {}, state.me.name), " used ", el("b", { class: "command-name" }, message.command)) : null,
  el("div", { class: isBot ? "avatar" : "avatar me-avatar" }, name.slice(0, 1).toUpperCase()),
  el("div", { class: "body" },
    el("div", {}, el("span", { class: "author" }, name), isBot ? el("span", { class: "app-tag" }, "APP") : null,
      el("span", { class: "time" }, time)),
    content,
    embeds,
    files.length ? el("div", { class: "attachments" }, files) : null,
    message.components && message.components.length ? el("div", { class: "components" },
      message.components.map((c) => drawComponent(message, c))) : null,
    el("div", { class: "reactions" }),
    message.ephemeral ? el("div", { class: "only-you" }, "👁 Only you can see this · ",
      el("button", { type: "button", onclick: () => { dismissed.add(message.id); node.remove(); drawn.delete(message.id); } },
        "Dismiss message")) : null));
  return node;
}

function drawReactions(node, message) {
  const row = node.querySelector(".reactions");
  row.replaceChildren(...(message.reactions || []).map((r) => el("button", {
    type: "button", class: `reaction${r.me ? " mine" : ""}`, "data-emoji": r.emoji, title: r.me ? "Take your reaction back" : "React",
    onclick: () => act("/api/react", { message_id: message.id, emoji: r.emoji }),
  }, el("span", {}, r.emoji), el("span", { class: "count" }, String(r.count)))));
}

let voiceKey = "";
// The voice channel in the sidebar: who is in it, and an audio player for each transmission it carried
// (what the fake Discord received and decrypted: the page plays exactly what a voice channel carries).
function drawVoice(voice) {
  const key = JSON.stringify(voice || {});
  if (!voice || key === voiceKey) return;
  voiceKey = key;
  $("voice-channel").textContent = voice.channel;
  $("voice-members").replaceChildren(...voice.members.map((name) => el("li", {}, name)));
  $("voice-heard").hidden = voice.captures.length === 0;
  $("voice-captures").replaceChildren(...voice.captures.map((c) => el("div", { class: "capture", "data-capture": c.id },
    el("div", { class: "capture-title" }, `#${c.id + 1} · ${c.seconds.toFixed(1)} s${c.e2ee ? " · 🔒 end-to-end encrypted" : ""}`),
    el("audio", { controls: true, preload: "metadata", src: c.url }))));
}

function render(state) {
  drawVoice(state.voice);
  document.title = `#${state.channel} · Mozart playground`;
  for (const id of ["channel-name", "sidebar-channel"]) $(id).textContent = state.channel;
  $("guild-name").textContent = state.guild;
  $("me-name").textContent = state.me.name;
  $("input").placeholder = `Message #${state.channel} — type / for commands`;
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  const seen = new Set();
  let previous = $("welcome");
  for (const message of state.messages) {
    if (dismissed.has(message.id)) continue;
    seen.add(message.id);
    const { reactions, ...rest } = message;
    const key = JSON.stringify(rest);
    const reactionsKey = JSON.stringify(reactions);
    let entry = drawn.get(message.id);
    if (!entry || entry.key !== key) {
      const node = drawMessage(message, state);
      if (entry) entry.element.replaceWith(node);
      entry = { key, reactionsKey: null, element: node };
      drawn.set(message.id, entry);
    }
    if (entry.reactionsKey !== reactionsKey) {
      drawReactions(entry.element, message);
      entry.reactionsKey = reactionsKey;
    }
    if (previous.nextSibling !== entry.element) previous.after(entry.element);
    previous = entry.element;
  }
  for (const failed of state.unanswered) {
    const id = `unanswered-${failed.id}`;
    if (dismissed.has(id)) continue;
    seen.add(id);
    if (!drawn.has(id)) {
      const node = el("article", { class: "message ephemeral unanswered", "data-message-id": id },
        failed.command ? el("div", { class: "used" }, el("b", {}, state.me.name), " used ", el("b", {}, failed.command)) : null,
        el("div", { class: "avatar" }, state.bot.name.slice(0, 1)),
        el("div", { class: "body" }, el("div", { class: "content failed" }, "⚠ The application did not respond"),
          el("div", { class: "only-you" }, "👁 Only you can see this · ",
            el("button", { type: "button", onclick: () => { dismissed.add(id); node.remove(); drawn.delete(id); } },
              "Dismiss message"))));
      drawn.set(id, { key: "", reactionsKey: "", element: node });
    }
    const entry = drawn.get(id);
    if (previous.nextSibling !== entry.element) previous.after(entry.element);
    previous = entry.element;
  }
  for (const [id, entry] of drawn) {
    if (!seen.has(id)) { entry.element.remove(); drawn.delete(id); }
  }
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

// --- what the person does ---------------------------------------------------------------------
async function act(path, body) {
  const answer = await post(path, body);
  showError(answer.ok === false ? answer.error : "");
}

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text || "";
}

async function send() {
  const text = $("input").value.trim();
  if (!text) return;
  if (!text.startsWith("/")) {
    showError("Mozart answers slash commands: type / to see them.");
    return;
  }
  let answer;
  if (attachedFile) {
    const form = new FormData();
    form.append("text", text);
    form.append("file", attachedFile, attachedFile.name);
    const response = await fetch("/api/command", { method: "POST", body: form });
    answer = await response.json().catch(() => ({ ok: false, error: `The playground answered ${response.status}.` }));
  } else {
    answer = await post("/api/command", { text });
  }
  if (answer.ok) {
    $("input").value = "";
    detach();
    hideSuggestions();
    showError("");
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
  } else {
    showError(answer.error);
  }
}

let suggestTimer = null;
let suggestSeq = 0;
function scheduleSuggest() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(async () => {
    const text = $("input").value;
    const seq = ++suggestSeq;
    const found = text.startsWith("/") ? await post("/api/suggest", { text }) : [];
    if (seq === suggestSeq) showSuggestions(Array.isArray(found) ? found : []);
  }, 120);
}

function showSuggestions(found) {
  stale = false;
  suggestions = found;
  selected = found.length ? 0 : -1;
  const box = $("suggestions");
  box.replaceChildren(...found.map((s, i) => el("li", { role: "option", class: i === selected ? "selected" : "",
    onmousedown: (event) => { event.preventDefault(); choose(i); } },
  el("span", { class: "label" }, s.label), el("span", { class: "detail" }, s.detail))));
  box.hidden = !found.length;
}

function hideSuggestions() {
  suggestions = [];
  selected = -1;
  $("suggestions").hidden = true;
}

function choose(i) {
  $("input").value = suggestions[i].text;
  $("input").focus();
  scheduleSuggest();
}

function moveSelection(step) {
  if (!suggestions.length) return;
  selected = (selected + step + suggestions.length) % suggestions.length;
  [...$("suggestions").children].forEach((li, i) => li.classList.toggle("selected", i === selected));
  $("suggestions").children[selected].scrollIntoView({ block: "nearest" });
}

function detach() {
  attachedFile = null;
  $("file").value = "";
  $("attached").hidden = true;
}

document.addEventListener("DOMContentLoaded", () => {
  const input = $("input");
  input.addEventListener("input", () => { stale = true; showError(""); scheduleSuggest(); });
  input.addEventListener("keydown", (event) => {
    const open = !$("suggestions").hidden && suggestions.length && !stale;
    if (event.key === "ArrowDown" && open) { event.preventDefault(); moveSelection(1); }
    else if (event.key === "ArrowUp" && open) { event.preventDefault(); moveSelection(-1); }
    else if (event.key === "Tab" && open) { event.preventDefault(); choose(selected); }
    else if (event.key === "Escape") hideSuggestions();
    else if (event.key === "Enter") {
      event.preventDefault();
      // Enter takes a suggestion that changes the text (a command, an option, a choice); otherwise sends
      const same = (a, b) => a.trim().toLowerCase() === b.trim().toLowerCase();
      if (open && !same(suggestions[selected].text, input.value)) choose(selected);
      else send();
    }
  });
  input.addEventListener("blur", () => setTimeout(hideSuggestions, 150));
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  $("file").addEventListener("change", () => {
    attachedFile = $("file").files[0] || null;
    $("attached").hidden = !attachedFile;
    $("attached-name").textContent = attachedFile ? `📎 ${attachedFile.name}` : "";
    input.focus();
  });
  $("detach").addEventListener("click", detach);
  input.focus();
  poll();
});
