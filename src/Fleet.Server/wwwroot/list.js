// #/ — the device directory: fleet counts, search and filters, 100 devices a page (cursor paging), rows that turn
// online/offline as the event stream says.
import { api, query, ApiError } from './api.js';
import { el, fill, onlineBadge, setOnline, table, time } from './ui.js';
import { subscribe } from './live.js';
import { alertHandlers, showAlerts } from './alerts.js';

const PageSize = 100;

export async function listPage(main, params) {
  document.title = 'Devices · Fleet';
  const filters = {
    q: params.get('q') ?? '', online: params.get('online') ?? '', protocol: params.get('protocol') ?? '',
    gw_id: params.get('gw_id') ?? '',
  };
  const cursors = [null]; // the cursor of every page walked to; the last is the page shown
  let next = null;

  const counts = el('section', { class: 'counts', 'aria-label': 'Fleet counts', id: 'counts' });
  const problem = el('p', { class: 'message error', role: 'alert', id: 'list-problem', hidden: true });
  const tbody = el('tbody');
  const pageNote = el('span', { id: 'page-note', 'aria-live': 'polite' });
  const previous = el('button', { type: 'button', id: 'previous', onclick: () => { cursors.pop(); load(); } }, 'Previous');
  const nextButton = el('button', { type: 'button', id: 'next', onclick: () => { cursors.push(next); load(); } }, 'Next');

  const field = (id, label, control) => el('div', { class: 'field' }, el('label', { for: id }, label), control);
  const select = (id, value, options) => el('select', { id, name: id },
    options.map(([v, text]) => el('option', { value: v, selected: v === value }, text)));
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Find devices', onsubmit: e => {
    e.preventDefault();
    const data = new FormData(form);
    const hash = `#/${query(Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v).trim()])))}`;
    if (hash === (location.hash || '#/')) reload(); else location.hash = hash;
  } },
  field('q', 'Search (device id, location, MAC)', el('input', { id: 'q', name: 'q', type: 'search', value: filters.q, autocomplete: 'off' })),
  field('online', 'Connection', select('online', filters.online, [['', 'any'], ['true', 'online'], ['false', 'offline']])),
  field('protocol', 'Firmware dialect', select('protocol', filters.protocol, [['', 'any'], ['seed', 'seed'], ['2025', '2025'], ['9', '9.x']])),
  field('gw_id', 'Gateway id', el('input', { id: 'gw_id', name: 'gw_id', value: filters.gw_id, autocomplete: 'off' })),
  el('div', { class: 'field actions' }, el('button', { type: 'submit' }, 'Search')));

  fill(main,
    el('h1', { tabindex: '-1' }, 'Devices'),
    counts, form, problem,
    table('Devices', ['Device', 'Connection', 'Dialect', 'Location', 'MAC', 'Gateways', 'Firmware', 'Last seen'], tbody,
      { id: 'devices' }),
    el('nav', { class: 'pager', 'aria-label': 'Pages' }, previous, pageNote, nextButton));

  function row(d) {
    return el('tr', { dataset: { device: d.device_id } },
      el('th', { scope: 'row' }, el('a', { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id)),
      el('td', { class: 'online' }, onlineBadge(d.online)),
      el('td', {}, d.protocol ?? '—'),
      el('td', {}, d.location_id ?? '—'),
      el('td', { class: 'mono' }, d.ap_mac_address ?? '—'),
      el('td', {}, (d.gateways ?? []).join(', ') || '—'),
      el('td', {}, d.firmware ?? '—'),
      el('td', {}, time(d.last_seen)));
  }

  async function load() {
    problem.hidden = true;
    let page;
    try {
      page = await api('GET', `/api/v1/devices${query({ ...filters, limit: PageSize, cursor: cursors.at(-1) })}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      problem.hidden = false;
      problem.textContent = err.message;
      return;
    }
    next = page.next_cursor;
    fill(tbody, page.items.length ? page.items.map(row)
      : el('tr', {}, el('td', { colspan: '8' }, 'No device matches.')));
    const first = (cursors.length - 1) * PageSize;
    pageNote.textContent = page.items.length
      ? `Page ${cursors.length}: devices ${first + 1}–${first + page.items.length}` : `Page ${cursors.length}`;
    previous.disabled = cursors.length === 1;
    nextButton.disabled = !next;
  }

  async function showCounts() {
    let stats;
    try { stats = await api('GET', '/api/v1/stats'); } catch { counts.hidden = true; return; }
    const d = stats.devices ?? {};
    const p = d.by_protocol ?? {};
    counts.hidden = false;
    const item = (id, label, value) => el('div', { class: 'count', id: `count-${id}` }, el('dt', {}, label), el('dd', {}, value ?? '—'));
    fill(counts, el('dl', {},
      item('known', 'Devices', d.known), item('online', 'Online', d.online), item('offline', 'Offline', d.offline),
      item('pending', 'Pending approval', d.pending), item('seed', 'Seed', p.seed ?? 0), item('2025', '2025', p['2025'] ?? 0),
      item('9', '9.x', p['9'] ?? 0), item('alerts', 'Open alerts', stats.alerts?.open)));
  }

  function reload() { cursors.splice(1); load(); }

  // The directory and the counts follow the journal about a second behind the event: counts are read again then.
  let countsTimer = 0;
  const countsSoon = () => { clearTimeout(countsTimer); countsTimer = setTimeout(showCounts, 1500); };
  const mark = online => e => {
    const tr = tbody.querySelector(`tr[data-device="${CSS.escape(e.device_id ?? '')}"]`);
    const badge = tr?.querySelector('.online .badge');
    if (badge) setOnline(badge, online);
    countsSoon();
  };
  const stop = subscribe({ types: ['device.online', 'device.offline', 'alert.opened', 'alert.resolved'],
    onReconnect: () => { load(); showCounts(); showAlerts(); } },
  { 'device.online': mark(true), 'device.offline': mark(false), ...alertHandlers });

  await Promise.all([load(), showCounts()]);
  return () => { stop(); clearTimeout(countsTimer); };
}
