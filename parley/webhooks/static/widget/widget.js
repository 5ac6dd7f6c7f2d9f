/*! Parley chat widget */
(() => {
  'use strict';

  const script = document.currentScript;
  if (!script || window.Parley) return;

  const API = '/widget/api';
  const FILE_PATH = /^\/widget\/api\/files\/[A-Za-z0-9_-]{20,100}$/;
  const DEFAULTS = { title: 'Chat', greeting: '', quick_replies: [], max_length: 2000, max_file_mb: 10 };
  const SEND_RETRIES = 3;
  const RETRY_STATUS = [502, 503, 504];
  // The interface's own words, in English until /config sends the customer's language's (texts: ui_*).
  const T = {
    ui_open: 'Open chat', ui_close: 'Close chat', ui_input: 'Type your message', ui_send: 'Send',
    ui_typing: 'Assistant is typing', ui_you: 'You:', ui_assistant: 'Assistant:', ui_support: '{name} (support)',
    ui_source: 'Source:', ui_helpful: 'Helpful', ui_not_helpful: 'Not helpful',
    ui_feedback_thanks: 'Thanks for your feedback', ui_feedback_failed: "Couldn't send feedback",
    ui_too_fast: "You're sending messages too fast, please wait a moment",
    ui_too_long: 'Your message is too long (max {max} characters)',
    ui_reconnecting: 'Connection lost, retrying…',
    ui_offline: 'Connection lost. Please check your connection and try again.',
    ui_error: 'Something went wrong. Please try again.', ui_not_sent: 'Not sent',
    ui_attach: 'Attach a file', ui_file_too_big: 'That file is too big (max {max} MB)',
    ui_file_refused: "That kind of file can't be sent here",
  };
  const SECRET_HEADER = 'X-Parley-Secret';
  const LOST = [401, 404]; // the server no longer knows the conversation, or its key changed

  const base = apiBase(script.src);
  const bot = script.dataset.bot || 'default';
  // The customer's language: the embedding site's choice for this page (data-language), else the
  // browser's (the customer's own setting), else the page's <html lang>.
  const language = script.dataset.language || navigator.language || document.documentElement.lang || '';
  const storageKey = `parley:${bot}:conversation`;

  const state = {
    config: DEFAULTS,
    conversationId: null,
    secret: null, // the conversation's credential: the id alone opens nothing
    streamToken: '', // EventSource sends no headers: the stream takes a short-lived pass instead
    streamTokenUntil: 0,
    shown: new Map(), // message id -> element: history, SSE and POST overlap
    streams: new Map(), // reply_id -> draft bubble
    unmatched: [], // user bubbles not yet echoed by the server
    sent: false,
    pending: 0,
    typingTimer: 0,
    blockedUntil: 0,
    queue: Promise.resolve(),
    events: null,
    eventsTimer: 0,
    eventsAttempt: 0,
    eventsDelay: 1000,
    eventsOff: false,
    lastEventId: '',
    catchUp: false,
    openOnStart: script.dataset.open === 'true',
  };
  let ui = null;

  function apiBase(src) {
    const url = new URL(src, location.href);
    const i = url.pathname.lastIndexOf('/widget/widget.js');
    return url.origin + (i >= 0 ? url.pathname.slice(0, i) : '');
  }

  // Storage throws in some private modes / iframes. Before secrets, the value was the bare id.
  function loadConversation() {
    try {
      const raw = localStorage.getItem(storageKey);
      if (!raw) return null;
      if (!raw.startsWith('{')) return { id: raw, secret: null };
      const saved = JSON.parse(raw) || {};
      return str(saved.id) ? { id: saved.id, secret: str(saved.secret) || null } : null;
    } catch { return null; }
  }
  function saveConversation(id, secret) {
    try {
      if (id) localStorage.setItem(storageKey, JSON.stringify({ id, secret }));
      else localStorage.removeItem(storageKey);
    } catch { /* ignore */ }
  }

  // randomUUID needs a secure context.
  function uuid() {
    if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    return [...b].map((n, i) => ([4, 6, 8, 10].includes(i) ? '-' : '') + n.toString(16).padStart(2, '0')).join('');
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const str = (v) => (typeof v === 'string' ? v : '');

  // Strings become text nodes, never HTML.
  function h(tag, attrs = {}, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (v != null) node.setAttribute(k, v);
    }
    node.append(...kids.filter((kid) => kid != null));
    return node;
  }

  const CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z';
  const CLIP = 'M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z';
  const THUMB = 'M1 21h4V9H1zm22-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.5-1.1L14.2 1 7.6 7.6C7.2 8 7 8.4 7 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7c.1-.3.2-.5.2-.8z';

  // No innerHTML: Trusted Types pages refuse it. SVG, not emoji: not every system has the font.
  function icon(d, flip) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    const path = document.createElementNS(ns, 'path');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    if (flip) svg.setAttribute('transform', 'rotate(180)');
    path.setAttribute('d', d);
    svg.append(path);
    return svg;
  }

  // Emphasis must hug its text so "2 * 3 * 4" stays literal.
  const INLINE = /\[([^\]\n]+)\]\(([^()\s]+)\)|\*\*([^\s*](?:[^*\n]*[^\s*])?)\*\*|\*([^\s*](?:[^*\n]*[^\s*])?)\*/g;

  function renderMarkdown(text) {
    const frag = document.createDocumentFragment();
    let list = null;
    let afterText = false;
    for (const line of text.split(/\r?\n/)) {
      if (line.startsWith('- ')) {
        if (!list) frag.append((list = h('ul')));
        list.append(h('li', {}, ...renderInline(line.slice(2))));
        afterText = false;
      } else {
        if (afterText) frag.append(h('br'));
        frag.append(...renderInline(line));
        list = null;
        afterText = true;
      }
    }
    return frag;
  }

  function renderInline(line) {
    const out = [];
    let last = 0;
    for (const m of line.matchAll(INLINE)) {
      out.push(line.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[1]) {
        // javascript: etc. stay text
        const ok = /^https?:\/\//i.test(m[2]);
        out.push(ok ? h('a', { href: m[2], target: '_blank', rel: 'noopener noreferrer' }, m[1]) : m[0]);
      } else {
        out.push(m[3] ? h('strong', {}, m[3]) : h('em', {}, m[4]));
      }
    }
    out.push(line.slice(last));
    return out;
  }

  const CSS = `
:host{all:initial}
.root{--p:#2563eb;--pt:#fff;font:14px/1.45 system-ui,sans-serif;color:#1f2937}
*{box-sizing:border-box}
button,textarea{font:inherit;cursor:pointer}
:focus-visible{outline:2px solid #1f2937;outline-offset:2px}
header :focus-visible,.launcher:focus-visible{outline-color:currentColor;outline-offset:-4px}
.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483646;width:56px;height:56px;border:0;border-radius:50%;background:var(--p);color:var(--pt);display:grid;place-items:center;box-shadow:0 4px 14px #0004}
.launcher svg{width:26px;fill:currentColor}
.panel{position:fixed;right:20px;bottom:88px;z-index:2147483647;width:370px;height:min(560px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;border-radius:14px;overflow:hidden;box-shadow:0 10px 40px #0004}
[hidden]{display:none!important}
header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:var(--p);color:var(--pt)}
h2{margin:0;font-size:16px}
.close{background:none;border:0;color:inherit;font-size:22px;line-height:1;padding:4px 8px}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;background:#f7f7f9}
.msg{max-width:85%;display:flex;flex-direction:column;align-items:flex-start;gap:4px}
.user{align-self:flex-end;align-items:flex-end}
.bubble,.typing{padding:8px 12px;border-radius:14px;background:#fff;border:1px solid #e5e7eb;overflow-wrap:anywhere}
.user .bubble,.streaming{white-space:pre-wrap}
.user .bubble{background:var(--p);color:var(--pt)}
.bubble ul{margin:4px 0;padding-left:20px}
.meta,.src,.fb,.failed{font-size:12px;color:#6b7280}
.file img{display:block;max-width:100%;max-height:240px;border-radius:10px;border:1px solid #e5e7eb}
a.file{color:var(--p);overflow-wrap:anywhere}
.failed,.notice{color:#b91c1c}
.fb{display:flex;align-items:center;gap:4px}
.fb button{display:grid;place-items:center;width:28px;height:24px;padding:0;border:1px solid #e5e7eb;background:#fff;color:#6b7280;border-radius:9px}
.fb svg{width:14px;fill:currentColor}
.fb [aria-pressed=true]{color:var(--p);border-color:var(--p);opacity:1}
button:disabled{opacity:.5;cursor:default}
.typing{align-self:flex-start;display:flex;gap:4px;padding:12px}
.dot{width:6px;height:6px;border-radius:50%;background:#9ca3af;animation:b 1.2s infinite}
.dot:nth-child(2){animation-delay:.2s}.dot:nth-child(3){animation-delay:.4s}
@keyframes b{40%{opacity:.2}}
@media (prefers-reduced-motion:reduce){.dot{animation:none}}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.quick{display:flex;flex-wrap:wrap;gap:6px;padding:0 14px 10px;background:#f7f7f9}
.quick:empty{display:none}
.quick button{border:1px solid var(--p);background:#fff;color:inherit;border-radius:99px;padding:4px 12px}
.notice{padding:6px 14px;font-size:13px;background:#fef2f2}
.notice:empty{padding:0}
form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb}
textarea{flex:1;resize:none;max-height:120px;padding:8px 10px;border:1px solid #d1d5db;border-radius:10px;color:inherit;cursor:text}
[aria-invalid=true]{border-color:#b91c1c}
.send{border:0;border-radius:10px;padding:0 14px;background:var(--p);color:var(--pt);font-weight:600}
.attach{display:grid;place-items:center;width:36px;border:1px solid #e5e7eb;border-radius:10px;background:#fff;color:#6b7280}
.attach svg,.sent-file svg{width:16px;fill:currentColor;vertical-align:middle}
@media (max-width:479.98px){.panel{inset:0;width:auto;height:auto;border-radius:0}}`;

  // Strict CSPs block inline <style>.
  function applyStyles(shadow) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } catch {
      shadow.append(h('style', {}, CSS));
    }
  }

  function buildUI() {
    const host = h('div', { 'data-parley': '' });
    const shadow = host.attachShadow({ mode: 'open' });
    applyStyles(shadow);
    const dot = () => h('span', { class: 'dot' });
    const u = { shadow };
    u.launcher = h('button', {
      class: 'launcher', type: 'button', 'aria-label': T.ui_open, 'aria-expanded': 'false',
      'aria-controls': 'parley-panel', onclick: () => (u.panel.hidden ? open() : close()),
    }, icon(CHAT));
    u.title = h('h2', {}, DEFAULTS.title);
    u.typing = h('div', { class: 'typing', hidden: '' }, dot(), dot(), dot(), h('span', { class: 'sr' }, T.ui_typing));
    u.log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite' }, u.typing);
    u.quick = h('div', { class: 'quick' });
    u.notice = h('div', { class: 'notice', id: 'parley-notice', role: 'alert' });
    u.input = h('textarea', {
      rows: 1, 'aria-label': T.ui_input, maxlength: DEFAULTS.max_length, 'aria-describedby': 'parley-notice',
      oninput: () => { u.input.removeAttribute('aria-invalid'); autoGrow(); },
      onkeydown: (e) => {
        // isComposing: Enter picking an IME candidate
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitInput(); }
      },
    });
    u.send = h('button', { class: 'send' }, T.ui_send);
    // A photo or a file for the support team; the server checks it again, by its bytes.
    u.file = h('input', {
      type: 'file', hidden: '', accept: 'image/*,application/pdf,text/plain',
      onchange: () => { const file = u.file.files[0]; u.file.value = ''; if (file) attach(file); },
    });
    u.attach = h('button', { class: 'attach', type: 'button', 'aria-label': T.ui_attach, title: T.ui_attach,
      onclick: () => u.file.click() }, icon(CLIP));
    u.panel = h('div', { class: 'panel', id: 'parley-panel', role: 'dialog', 'aria-label': DEFAULTS.title, hidden: '' },
      h('header', {}, u.title, h('button', { class: 'close', type: 'button', 'aria-label': T.ui_close, onclick: close }, '×')),
      u.log, u.quick, u.notice,
      h('form', { onsubmit: (e) => { e.preventDefault(); submitInput(); } }, u.attach, u.file, u.input, u.send));
    u.root = h('div', {
      class: 'root',
      onkeydown: (e) => {
        if (e.key === 'Escape' && !u.panel.hidden) { e.preventDefault(); close(); u.launcher.focus(); }
      },
    }, u.launcher, u.panel);
    shadow.append(u.root);
    document.body.append(host);
    return u;
  }

  function open(focus = true) {
    if (!ui) { state.openOnStart = true; return; }
    ui.panel.hidden = false;
    ui.launcher.setAttribute('aria-expanded', 'true');
    scrollToEnd();
    if (focus) ui.input.focus();
    // Live only while open: each stream holds a server thread.
    if (state.conversationId && !state.events) {
      state.catchUp = true;
      connectEvents();
    }
  }

  function close() {
    if (!ui) { state.openOnStart = false; return; }
    // Scripted close() mustn't steal page focus.
    const hadFocus = ui.panel.contains(ui.shadow.activeElement);
    ui.panel.hidden = true;
    ui.launcher.setAttribute('aria-expanded', 'false');
    if (hadFocus) ui.launcher.focus();
    closeEvents();
  }

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 120)}px`;
  }

  const scrollToEnd = () => { ui.log.scrollTop = ui.log.scrollHeight; };
  const showNotice = (text) => { ui.notice.textContent = text; };

  function appendMessage(node) {
    ui.log.insertBefore(node, ui.typing);
    scrollToEnd();
  }

  function updateTyping() {
    const on = (state.pending > 0 && !state.streams.size) || state.typingTimer !== 0;
    ui.typing.hidden = !on;
    if (on) scrollToEnd();
  }

  function showTypingBriefly() {
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => { state.typingTimer = 0; updateTyping(); }, 3000);
    updateTyping();
  }

  function setQuickReplies(list) {
    const items = new Set((Array.isArray(list) ? list : []).filter((q) => str(q).trim()));
    ui.quick.replaceChildren(...[...items].map((q) => h('button', { type: 'button', onclick: () => trySend(q) }, q)));
  }

  function userNode(text, files = []) {
    const names = files.map((f) => h('div', { class: 'bubble sent-file' }, icon(CLIP), ' ', str(f.name)));
    return h('div', { class: 'msg user' }, h('span', { class: 'sr' }, T.ui_you),
      text || !names.length ? h('div', { class: 'bubble' }, text) : null, ...names);
  }

  // A rep's file, from our own server only: a photo shown, anything else a link to download.
  function fileNode(file) {
    const url = base + str(file.url);
    const name = str(file.name) || str(file.url).split('/').pop();
    const link = { class: 'file', href: url, target: '_blank', rel: 'noopener noreferrer' };
    return /^image\//.test(str(file.type))
      ? h('a', link, h('img', { src: url, alt: name, onload: scrollToEnd }))
      : h('a', { ...link, download: name }, name);
  }

  function botNode(msg) {
    const author = str(msg.author);
    const sources = Array.isArray(msg.sources) ? msg.sources.filter((s) => s && s.title) : [];
    const files = Array.isArray(msg.files) ? msg.files.filter((f) => f && FILE_PATH.test(str(f.url))) : [];
    // Numbered like the answer's own "[1]" markers when it has them; linked when the article has a URL.
    const numbered = /\[\d{1,2}\](?!\()/.test(str(msg.text));
    return h('div', { class: author ? 'msg agent' : 'msg bot' },
      h('div', { class: author ? 'meta' : 'sr' }, author ? T.ui_support.replace('{name}', author) : T.ui_assistant),
      str(msg.text) || !files.length ? h('div', { class: 'bubble' }, renderMarkdown(str(msg.text))) : null,
      ...files.map(fileNode),
      ...sources.map((s, i) => h('div', { class: 'src' }, numbered ? `[${i + 1}] ` : `${T.ui_source} `,
        /^https?:\/\//i.test(str(s.url))
          ? h('a', { href: s.url, target: '_blank', rel: 'noopener noreferrer' }, s.title) : s.title)),
      msg.id && !author ? feedbackBar(msg.id) : null);
  }

  function addBotMessage(msg) {
    const id = str(msg.id);
    if (state.shown.has(id)) return;
    const node = botNode(msg);
    const draft = state.streams.get(id);
    if (draft) draft.replaceWith(node);
    else appendMessage(node);
    state.streams.delete(id);
    if (id) state.shown.set(id, node);
    clearTimeout(state.typingTimer);
    state.typingTimer = 0;
    updateTyping();
  }

  // Our own messages come back too.
  function addServerMessage(msg) {
    if (!msg || !str(msg.id) || state.shown.has(msg.id)) return;
    if (msg.direction !== 'in') return addBotMessage(msg);
    const i = state.unmatched.findIndex((u) => u.text === msg.text);
    let node = i >= 0 && state.unmatched.splice(i, 1)[0].node;
    if (!node) appendMessage((node = userNode(str(msg.text), Array.isArray(msg.files) ? msg.files : [])));
    state.shown.set(msg.id, node);
  }

  function appendToken(replyId, text) {
    if (!str(replyId) || state.shown.has(replyId)) return;
    let draft = state.streams.get(replyId);
    if (!draft) {
      draft = h('div', { class: 'msg bot', 'aria-busy': 'true' }, h('div', { class: 'bubble streaming' }));
      state.streams.set(replyId, draft);
      appendMessage(draft);
    }
    draft.lastChild.append(str(text));
    updateTyping();
    scrollToEnd();
  }

  function feedbackBar(messageId) {
    const note = h('span');
    const vote = async (score) => {
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const res = await request('/feedback', { conversation_id: state.conversationId, message_id: messageId, score }, state.secret);
        if (!res.ok) throw new Error(res.status);
        buttons[score > 0 ? 0 : 1].setAttribute('aria-pressed', 'true');
        note.textContent = T.ui_feedback_thanks;
      } catch {
        buttons.forEach((b) => { b.disabled = false; });
        note.textContent = T.ui_feedback_failed;
      }
    };
    const buttons = [
      h('button', { type: 'button', 'aria-label': T.ui_helpful, 'aria-pressed': 'false', onclick: () => vote(1) }, icon(THUMB)),
      h('button', { type: 'button', 'aria-label': T.ui_not_helpful, 'aria-pressed': 'false', onclick: () => vote(-1) }, icon(THUMB, true)),
    ];
    return h('div', { class: 'fb' }, ...buttons, note);
  }

  // POST if body. Timeout: a hung request would block the send queue. The secret goes in a
  // header, never in the URL (URLs reach access logs).
  async function request(path, body, secret) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 45000);
    const headers = body ? { 'Content-Type': 'application/json' } : {};
    if (secret) headers[SECRET_HEADER] = secret;
    try {
      return await fetch(base + API + path, {
        method: body ? 'POST' : 'GET',
        signal: ctl.signal,
        credentials: 'omit',
        headers,
        body: body ? JSON.stringify(body) : null,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  const readJson = (res) => res.json().catch(() => null);

  // Same client_message_id each try, so the server dedupes.
  async function postWithRetry(path, body) {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await request(path, body, body.conversation_id ? state.secret : null);
        if (!RETRY_STATUS.includes(res.status) || attempt >= SEND_RETRIES) return res;
      } catch (err) {
        if (attempt >= SEND_RETRIES) throw err;
      }
      showNotice(T.ui_reconnecting);
      await sleep(1000 * 2 ** attempt);
    }
  }

  function retryAfterMs(value) {
    if (!value) return 0;
    const ms = isNaN(value) ? Date.parse(value) - Date.now() : value * 1000;
    return ms > 0 ? ms : 0;
  }

  function rateLimited(res) {
    showNotice(T.ui_too_fast);
    const wait = retryAfterMs(res.headers.get('Retry-After'));
    if (!wait) return;
    state.blockedUntil = Date.now() + wait;
    ui.send.disabled = true;
    setTimeout(() => {
      if (Date.now() < state.blockedUntil) return;
      ui.send.disabled = false;
      if (ui.notice.textContent === T.ui_too_fast) showNotice('');
    }, wait);
  }

  function tooLong() {
    return T.ui_too_long.replace('{max}', String(state.config.max_length));
  }

  function submitInput() {
    if (!trySend(ui.input.value)) return;
    ui.input.value = '';
    autoGrow();
    ui.input.focus();
  }

  function trySend(raw) {
    const text = raw.normalize('NFC').trim(); // as the server stores it
    if (!text) return false;
    if (Date.now() < state.blockedUntil) {
      showNotice(T.ui_too_fast);
      return false;
    }
    const max = state.config.max_length;
    // Code points, as the server counts.
    if ([...text].length > max) {
      showNotice(tooLong());
      ui.input.setAttribute('aria-invalid', 'true');
      return false;
    }
    showNotice('');
    send(text);
    return true;
  }

  function send(text) {
    state.sent = true;
    setQuickReplies([]);
    const local = { text, node: userNode(text) };
    appendMessage(local.node);
    state.unmatched.push(local);
    const body = { text, conversation_id: null, client_message_id: uuid(), language };
    // Serial, so a new conversation id is known before the next send.
    state.queue = state.queue.then(() => deliver(body, local));
  }

  function attach(file) {
    const max = state.config.max_file_mb;
    if (file.size > max * 1e6) return showNotice(T.ui_file_too_big.replace('{max}', String(max)));
    if (Date.now() < state.blockedUntil) return showNotice(T.ui_too_fast);
    showNotice('');
    setQuickReplies([]);
    state.sent = true;
    const local = { text: '', node: userNode('', [{ name: file.name }]) };
    appendMessage(local.node);
    state.unmatched.push(local);
    state.queue = state.queue.then(() => deliverFile(file, local));
  }

  // The file first (its token back), then the message that carries it, as any message goes.
  async function deliverFile(file, local) {
    try {
      if (!state.conversationId && !(await startConversation())) throw new Error('no conversation');
      const form = new FormData();
      form.append('file', file, file.name);
      // A hung upload must not hold the send queue: it gives up after a minute, like a message.
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), 60000);
      const res = await fetch(`${base}${API}/files?conversation_id=${encodeURIComponent(state.conversationId)}`, {
        method: 'POST', credentials: 'omit', headers: { [SECRET_HEADER]: state.secret }, body: form, signal: ctl.signal,
      }).finally(() => clearTimeout(timer));
      const data = await readJson(res);
      if (!res.ok || !data || !str(data.file)) {
        markFailed(local);
        if (res.status === 429) rateLimited(res);
        else if (res.status === 413) showNotice(T.ui_file_too_big.replace('{max}', String(state.config.max_file_mb)));
        else showNotice(str(data && data.error) || T.ui_error);
        return;
      }
      await deliver({ text: '', conversation_id: null, client_message_id: uuid(), language, files: [data.file] }, local);
    } catch {
      markFailed(local);
      showNotice(T.ui_offline);
    }
  }

  async function deliver(body, local) {
    body.conversation_id = state.conversationId;
    state.pending++;
    updateTyping();
    try {
      let res = await post(body);
      if (LOST.includes(res.status) && body.conversation_id) {
        // Server lost the conversation (or its key changed): start anew.
        forgetConversation();
        body.conversation_id = null;
        res = await post(body);
      }
      const data = await readJson(res);
      if (res.ok && data) {
        showNotice('');
        // A first message posted without a conversation (the start failed) comes back with one.
        if (data.secret) adoptConversation(data.conversation_id, data.secret);
        const replies = (Array.isArray(data.replies) ? data.replies : []).filter(Boolean);
        replies.forEach(addBotMessage);
        setQuickReplies(replies.flatMap((r) => r.quick_replies || []));
        // 202: a slow answer lands in the history.
        if (data.pending) await pollForReply(state.conversationId);
        return;
      }
      markFailed(local);
      if (res.status === 429) rateLimited(res);
      else if (res.status === 413) showNotice(tooLong()); // the server's limit, in the customer's words
      else showNotice(str(data && data.error) || T.ui_error);
    } catch {
      markFailed(local);
      showNotice(T.ui_offline);
    } finally {
      state.pending--;
      updateTyping();
    }
  }

  // A new conversation gets its id and secret first, so the browser listens before it sends and
  // the streamed answer shows from its first token; retries then reuse that id (no second chat).
  async function post(body) {
    if (!body.conversation_id && (await startConversation())) {
      body.conversation_id = state.conversationId;
      await whenListening(3000);
    }
    return postWithRetry('/messages', body);
  }

  // With legacyId: a conversation saved before secrets existed asks for its own, once.
  // True when started, false when refused, null when the network failed (try again later).
  async function startConversation(legacyId) {
    try {
      const res = await request('/conversations', legacyId ? { conversation_id: legacyId } : {});
      const data = res.ok ? await readJson(res) : null;
      if (!data || !str(data.conversation_id) || !str(data.secret)) return false;
      adoptConversation(data.conversation_id, data.secret, data);
      return true;
    } catch {
      return null;
    }
  }

  function whenListening(ms) {
    const es = state.events;
    if (!es || es.readyState === EventSource.OPEN) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(done, ms);
      es.addEventListener('open', done, { once: true });
      es.addEventListener('error', done, { once: true });
    });
  }

  function markFailed(local) {
    state.unmatched = state.unmatched.filter((u) => u !== local);
    local.node.append(h('div', { class: 'failed' }, T.ui_not_sent));
    if (!ui.input.value) {
      ui.input.value = local.text;
      autoGrow();
    }
  }

  function adoptConversation(id, secret, pass) {
    if (!str(id) || !str(secret) || (id === state.conversationId && secret === state.secret)) return;
    state.conversationId = id;
    state.secret = secret;
    saveConversation(id, secret);
    setStreamPass(pass);
    state.eventsDelay = 1000;
    state.lastEventId = '';
    connectEvents();
  }

  function forgetConversation() {
    state.conversationId = null;
    state.secret = null;
    setStreamPass(null);
    saveConversation(null);
    closeEvents();
  }

  function setStreamPass(pass) {
    state.streamToken = (pass && str(pass.stream_token)) || '';
    // Renewed a minute early, so a pass never expires between asking and connecting.
    const seconds = (pass && Number(pass.expires_in)) || 0;
    state.streamTokenUntil = state.streamToken ? Date.now() + (seconds - 60) * 1000 : 0;
  }

  // False when the conversation's secret is refused (then it is forgotten).
  async function renewStreamPass(id) {
    const res = await request(`${conversationPath(id)}/stream-token`, {}, state.secret);
    if (LOST.includes(res.status)) {
      if (id === state.conversationId) forgetConversation();
      return false;
    }
    if (!res.ok) throw new Error(res.status);
    setStreamPass(await readJson(res));
    return Boolean(state.streamToken);
  }

  const conversationPath = (id) => `/conversations/${encodeURIComponent(id)}`;

  async function syncHistory(id) {
    try {
      const res = await request(conversationPath(id), null, state.secret);
      if (id !== state.conversationId) return;
      if (LOST.includes(res.status)) return forgetConversation();
      if (!res.ok) throw new Error(res.status);
      const data = await res.json();
      const messages = Array.isArray(data && data.messages) ? data.messages : [];
      messages.forEach(addServerMessage);
      const last = messages[messages.length - 1];
      if (last && last.direction === 'out') setQuickReplies(last.quick_replies);
    } catch {
      state.catchUp = true; // retry when events reconnect
    }
  }

  async function pollForReply(id) {
    for (let delay = 1000; delay <= 16000 && id === state.conversationId; delay *= 2) {
      await sleep(delay);
      await syncHistory(id);
      if (!ui.typing.previousElementSibling?.classList.contains('user')) return; // answered
    }
  }

  function closeEvents() {
    clearTimeout(state.eventsTimer);
    state.eventsAttempt++; // a pass still on its way must not open a stream after this
    if (state.events) state.events.close();
    state.events = null;
  }

  function connectEvents() {
    closeEvents();
    const id = state.conversationId;
    if (!id || state.eventsOff || !window.EventSource || ui.panel.hidden) return;
    if (state.streamToken && Date.now() < state.streamTokenUntil) return openEvents(id, state.streamToken);
    const attempt = state.eventsAttempt;
    renewStreamPass(id).then(
      (ok) => { if (ok && attempt === state.eventsAttempt && id === state.conversationId) connectEvents(); },
      () => { if (attempt === state.eventsAttempt) retryEvents(id, 0); });
  }

  function openEvents(id, token) {
    // A new EventSource forgets Last-Event-ID: resume by query instead.
    const resume = state.lastEventId ? `&cursor=${encodeURIComponent(state.lastEventId)}` : '';
    const es = new EventSource(`${base}${API}${conversationPath(id)}/events?token=${encodeURIComponent(token)}${resume}`);
    state.events = es;
    es.onopen = () => {
      state.eventsDelay = 1000;
      if (state.catchUp) {
        state.catchUp = false;
        syncHistory(id);
      }
    };
    es.onmessage = (e) => {
      if (e.lastEventId) state.lastEventId = e.lastEventId;
      onServerEvent(e.data);
    };
    es.onerror = () => onEventsError(es, id);
  }

  // Own reconnect for exponential backoff.
  async function onEventsError(es, id) {
    if (es !== state.events) return;
    // CLOSED means an HTTP error; EventSource hides its status.
    const httpError = es.readyState === EventSource.CLOSED;
    closeEvents();
    state.catchUp = true;
    const probe = httpError ? await eventsStatus(es.url) : { status: 0, retryAfter: 0 };
    if (probe.status === 404) {
      state.eventsOff = true;
      return;
    }
    if (probe.status === 401) setStreamPass(null); // expired: the reconnect asks for a new pass
    if (id !== state.conversationId || state.events) return;
    // 503: the server has no stream to spare now. Catch up from the history, then ask again later.
    if (probe.status === 503) syncHistory(id);
    retryEvents(id, probe.retryAfter);
  }

  function retryEvents(id, retryAfter) {
    if (id !== state.conversationId) return;
    clearTimeout(state.eventsTimer);
    state.eventsTimer = setTimeout(connectEvents, Math.max(state.eventsDelay, retryAfter));
    state.eventsDelay = Math.min(state.eventsDelay * 2, 30000);
  }

  async function eventsStatus(url) {
    const ctl = new AbortController();
    try {
      const res = await fetch(url, { signal: ctl.signal, credentials: 'omit' });
      return { status: res.status, retryAfter: retryAfterMs(res.headers.get('Retry-After')) };
    } catch {
      return { status: 0, retryAfter: 0 };
    } finally {
      ctl.abort();
    }
  }

  function onServerEvent(raw) {
    let ev;
    try { ev = JSON.parse(raw) || {}; } catch { return; }
    if (ev.type === 'message') {
      addServerMessage(ev.message);
      if (ev.message && ev.message.quick_replies && ev.message.quick_replies.length) setQuickReplies(ev.message.quick_replies);
    }
    else if (ev.type === 'typing') showTypingBriefly();
    else if (ev.type === 'token') appendToken(ev.reply_id, ev.text);
  }

  async function loadConfig() {
    try {
      const res = await request(`/config?bot=${encodeURIComponent(bot)}&language=${encodeURIComponent(language)}`);
      if (res.ok) return (await readJson(res)) || {};
    } catch { /* defaults */ }
    return {};
  }

  function applyConfig(c) {
    const max = Number.isInteger(c.max_length) && c.max_length > 0 ? c.max_length : DEFAULTS.max_length;
    const title = str(c.title) || DEFAULTS.title;
    const fileMb = typeof c.max_file_mb === 'number' && c.max_file_mb > 0 ? c.max_file_mb : DEFAULTS.max_file_mb;
    state.config = { title, greeting: str(c.greeting), quick_replies: c.quick_replies, max_length: max, max_file_mb: fileMb };
    ui.title.textContent = title;
    ui.panel.setAttribute('aria-label', title);
    applyTexts(c.texts, c.language);
    ui.input.maxLength = max;
    setTheme(c.theme && c.theme.primary);
    // Greeting first even if the user sent before config arrived.
    if (state.config.greeting) ui.log.prepend(botNode({ text: state.config.greeting }));
  }

  function applyTexts(texts, lang) {
    if (texts && typeof texts === 'object') {
      for (const key of Object.keys(T)) if (typeof texts[key] === 'string' && texts[key]) T[key] = texts[key];
    }
    if (typeof lang === 'string' && lang) ui.root.setAttribute('lang', lang); // screen readers' voice
    ui.launcher.setAttribute('aria-label', T.ui_open);
    ui.shadow.querySelector('.close').setAttribute('aria-label', T.ui_close);
    ui.input.setAttribute('aria-label', T.ui_input);
    ui.send.textContent = T.ui_send;
    ui.typing.querySelector('.sr').textContent = T.ui_typing;
  }

  function setTheme(color) {
    if (!/^#([0-9a-f]{3}){1,2}$/i.test(color)) return;
    ui.root.style.setProperty('--p', color);
    // Readable text on any theme colour.
    const hex = color.length === 4 ? color.replace(/\w/g, '$&$&') : color;
    const n = parseInt(hex.slice(1), 16);
    const brightness = ((n >> 16) * 299 + ((n >> 8) & 255) * 587 + (n & 255) * 114) / 1000;
    ui.root.style.setProperty('--pt', brightness > 160 ? '#111827' : '#fff');
  }

  async function start() {
    ui = buildUI();
    // data-open: don't steal focus or pop a mobile keyboard.
    if (state.openOnStart) open(false);
    const saved = loadConversation();
    if (saved && saved.secret) {
      state.conversationId = saved.id;
      state.secret = saved.secret;
    } else if (saved && (await startConversation(saved.id)) === false) {
      saveConversation(null); // an id alone opens nothing: a new chat starts with the next message
    }
    applyConfig(await loadConfig());
    if (state.conversationId) await syncHistory(state.conversationId);
    if (!state.conversationId) {
      if (!state.sent) setQuickReplies(state.config.quick_replies);
    } else if (!state.events) {
      connectEvents();
    }
  }

  window.Parley = Object.freeze({ open: () => open(), close: () => close() });

  const boot = () => start().catch((err) => console.error('Parley widget:', err));
  if (document.body) boot();
  else document.addEventListener('DOMContentLoaded', boot, { once: true });
})();
