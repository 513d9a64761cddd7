// Small DOM helpers: elements from data (never HTML from strings: every value is text), times, status badges.

/** el('a', {href: '#/'}, 'text', child…): attributes starting with "on" are listeners; null/false ones are left out. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of a node. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** An ISO time as the reader's local date and time; "—" for none. */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function time(iso) {
  return iso ? el('time', { datetime: iso }, when(iso)) : '—';
}

/** Online/offline as words (never only a colour). */
export function onlineBadge(online) {
  return el('span', { class: `badge ${online ? 'on' : 'off'}` }, online ? 'online' : 'offline');
}

export function setOnline(badge, online) {
  badge.className = `badge ${online ? 'on' : 'off'}`;
  badge.textContent = online ? 'online' : 'offline';
}

export function statusBadge(status) {
  return el('span', { class: `status s-${status}` }, status);
}

/**
 * A table with a caption and column headers, inside a wrapper that scrolls sideways on a narrow screen. rows: the
 * rows, or a tbody the caller fills later.
 */
export function table(caption, headers, rows, attrs = {}) {
  return el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    el('table', attrs,
      el('caption', {}, caption),
      el('thead', {}, el('tr', {}, headers.map(h => el('th', { scope: 'col' }, h)))),
      rows instanceof HTMLTableSectionElement ? rows : el('tbody', {}, rows)));
}

/** A definition list of label → value pairs, skipping empty values. */
export function facts(pairs) {
  return el('dl', { class: 'facts' },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => [el('dt', {}, k), el('dd', {}, v instanceof Node ? v : String(v))]));
}

/** A polite live region for the outcome of an action (screen readers hear it; the form keeps focus). */
export function message() {
  return el('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
}

export function say(node, text, kind = 'ok') {
  node.className = `message ${kind}`;
  node.textContent = text;
}
