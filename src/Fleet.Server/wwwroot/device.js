// #/devices/{id} — one device: what it reported, its gateways (with the operator's desired auth_mode and a control to
// change it), clients, firmware, heartbeat figures, a form for every command type, and the command history. Its
// connection state and command statuses follow the event stream.
import { api, enc, may, ApiError } from './api.js';
import { el, fill, facts, message, onlineBadge, say, setOnline, statusBadge, table, time, when } from './ui.js';
import { subscribe } from './live.js';
import { alertHandlers, showAlerts } from './alerts.js';
import { commandTypes, body } from './commands.js';

const Final = new Set(['delivered', 'succeeded', 'failed', 'timed_out', 'expired', 'cancelled']);

export async function devicePage(main, deviceId) {
  document.title = `${deviceId} · Fleet`;
  const base = `/api/v1/devices/${enc(deviceId)}`;
  let device;
  try {
    device = await api('GET', base);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    fill(main, el('h1', { tabindex: '-1' }, deviceId), el('p', { role: 'alert' }, err.message),
      el('p', {}, el('a', { href: '#/' }, 'Back to the device list')));
    return () => {};
  }

  const badge = onlineBadge(device.online);
  const info = el('section', { 'aria-labelledby': 'h-info' });
  const figures = el('section', { 'aria-labelledby': 'h-system' });
  const tagList = el('div', { id: 'device-tags' });
  const tags = el('section', { 'aria-labelledby': 'h-tags' }, el('h2', { id: 'h-tags' }, 'Tags'), tagList,
    may.operate() ? tagsForm() : null);
  const gateways = el('section', { 'aria-labelledby': 'h-gateways' });
  const clients = el('section', { 'aria-labelledby': 'h-clients' });
  const history = el('tbody');
  const historyMessage = message();
  historyMessage.id = 'history-message';
  const gatewayMessage = message();
  gatewayMessage.id = 'gateway-message';

  fill(main,
    el('p', { class: 'crumbs' }, el('a', { href: '#/' }, '← Devices')),
    el('h1', { tabindex: '-1' }, deviceId, ' ', el('span', { id: 'device-online', 'aria-live': 'polite' }, badge)),
    el('div', { class: 'columns' }, info, figures),
    tags, gateways, gatewayMessage, clients,
    may.operate() ? commandForm() : el('p', { class: 'help', id: 'read-only' },
      'Your key has the viewer role: it may read, not send commands or change auth modes.'),
    el('section', { 'aria-labelledby': 'h-history' },
      el('h2', { id: 'h-history' }, 'Commands'),
      table('Command history, newest first', ['Created', 'Type', 'Status', 'Command id', 'Sent', 'Completed', 'Answer', ''],
        history, { id: 'commands' }),
      historyMessage));

  function showDevice(d) {
    setOnline(badge, d.online);
    const i = d.device_info ?? {};
    const s = d.system ?? {};
    fill(info,
      el('h2', { id: 'h-info' }, 'Device'),
      facts([
        ['Connection', d.online ? `online since ${when(d.connected_at)}` : 'offline'],
        ['Last seen', when(d.last_seen)], ['Node', d.node], ['Firmware dialect', d.protocol],
        ['Admission', d.admission && `${d.admission}${d.admission_by ? ` by ${d.admission_by}` : ''}`],
        ['Credential', d.credential], ['Cloned', d.cloned ? `yes, since ${when(d.cloned_since)}` : null],
        ['AP device id', i.ap_device_id], ['AP MAC', i.ap_mac_address], ['Location', i.location_id],
        ['Coordinates', i.ap_latitude || i.ap_longitude ? `${i.ap_latitude ?? '?'}, ${i.ap_longitude ?? '?'}` : null],
        ['Mode', d.mode === null || d.mode === undefined ? null : ['cloud', 'bypass', 'local'][d.mode] ?? d.mode],
      ]));
    fill(figures,
      el('h2', { id: 'h-system' }, 'System (latest heartbeat)'),
      Object.keys(s).length ? facts([
        ['Uptime', s.sys_uptime != null ? duration(s.sys_uptime) : null], ['Free memory', s.sys_memfree != null ? `${s.sys_memfree} kB` : null],
        ['Load', s.sys_load], ['CPU', s.cpu_usage != null ? `${s.cpu_usage} %` : null],
        ['CPU temperature', s.cpu_temp != null ? `${s.cpu_temp} °C` : null], ['Connections tracked', s.nf_conntrack_count],
        ['WiFiDog uptime', s.wifidog_uptime != null ? duration(s.wifidog_uptime) : null],
        ['Clients online', s.online_clients], ['Clients offline', s.offline_clients],
      ]) : el('p', { class: 'help' }, 'This firmware sends no system figures in its heartbeat.'),
      el('h2', {}, 'Firmware'),
      Object.keys(d.firmware ?? {}).length ? facts(Object.entries(d.firmware)) : el('p', { class: 'help' },
        'Not known yet: send get_firmware_info.'));

    showTags(d.tags);
    fill(gateways, el('h2', { id: 'h-gateways' }, 'Gateways'),
      table('Gateways', ['Gateway', 'Channel', 'IPv4', 'IPv6', 'Interface', 'auth_mode', 'Desired auth_mode', ...(may.operate() ? ['Change'] : [])],
        (d.gateways ?? []).map(g => el('tr', { dataset: { gateway: g.gw_id } },
          el('th', { scope: 'row' }, g.gw_id), el('td', {}, g.gw_channel ?? '—'), el('td', {}, g.gw_address_v4 ?? '—'),
          el('td', {}, g.gw_address_v6 ?? '—'), el('td', {}, g.gw_interface ?? '—'),
          el('td', { class: 'auth-mode' }, g.auth_mode ?? '—'), el('td', { class: 'desired-auth-mode' }, g.desired_auth_mode ?? 'none'),
          may.operate() ? el('td', {}, authModeForm(g)) : null)), { id: 'gateways' }));

    fill(clients, el('h2', { id: 'h-clients' }, 'Clients'),
      (d.clients ?? []).length
        ? table('Clients', ['MAC', 'IP', 'Name', 'Gateway', 'Since', 'Leaves', 'Pass until'],
          d.clients.map(c => el('tr', {}, el('th', { scope: 'row', class: 'mono' }, c.client_mac), el('td', {}, c.client_ip ?? '—'),
            el('td', {}, c.client_name ?? '—'), el('td', {}, c.gw_id ?? '—'), el('td', {}, time(c.authorized_at)),
            el('td', {}, c.expires_at ? time(c.expires_at) : 'when kicked off'), el('td', {}, time(c.pass_until)))), { id: 'clients' })
        : el('p', { class: 'help' }, 'No client in the controller\'s view.'));
    device = d;
  }

  function showTags(t) {
    const entries = Object.entries(t ?? {});
    fill(tagList, entries.length
      ? el('ul', { class: 'tags' }, entries.map(([k, v]) => el('li', { dataset: { tag: k } }, el('span', { class: 'tag-key' }, k), '=', v)))
      : el('p', { class: 'help' }, 'No tags.'));
  }

  /**
   * The operator's tags, key=value a line: saving replaces them (PUT …/tags). Tags derived from device_info come back by
   * themselves; one kept here wins over the derived value. Filled once (and after a save), so that a reload of the
   * device while someone types leaves the text alone.
   */
  function tagsForm() {
    const out = message();
    out.id = 'tags-message';
    const lines = o => Object.entries(o ?? {}).map(([k, v]) => `${k}=${v}`).join('\n');
    const input = el('textarea', { id: 'tags-input', name: 'tags', rows: '3', spellcheck: 'false', autocomplete: 'off',
      'aria-describedby': 'tags-help', placeholder: 'site=paris\ntz=Europe/Paris' });
    input.value = lines(device.operator_tags ?? device.tags);
    const form = el('form', { class: 'card tags-form', id: 'tags-form', onsubmit: async e => {
      e.preventDefault();
      const wanted = {};
      for (const line of input.value.split('\n').map(l => l.trim()).filter(Boolean)) {
        const at = line.indexOf('=');
        if (at < 1) { say(out, `'${line}' is not key=value`, 'error'); input.focus(); return; }
        wanted[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      say(out, 'Saving tags…', 'busy');
      try {
        const saved = await api('PUT', `${base}/tags`, { tags: wanted });
        input.value = lines(saved.operator_tags);
        showTags(saved.tags);
        say(out, Object.keys(saved.operator_tags ?? {}).length ? 'Tags saved.' : 'Operator tags cleared.');
      } catch (err) {
        say(out, err.message, 'error');
      }
    } },
    el('label', { for: 'tags-input' }, 'Operator tags (key=value, one a line)'), input,
    el('p', { id: 'tags-help', class: 'help' },
      'Saving replaces the operator\'s tags with these lines; an empty box clears them. A tag derived from what the router reports (such as location) comes back by itself; kept here, it stays as written.'),
    el('button', { type: 'submit', id: 'save-tags' }, 'Save tags'), out);
    return form;
  }

  function authModeForm(g) {
    const id = `auth-mode-${g.gw_id}`;
    const input = el('input', { id, name: 'auth_mode', inputmode: 'numeric', size: '3', value: g.desired_auth_mode ?? g.auth_mode ?? '' });
    return el('form', { class: 'inline', onsubmit: async e => {
      e.preventDefault();
      const text = input.value.trim();
      try {
        await api('PUT', `${base}/gateways/${enc(g.gw_id)}/auth-mode`, { auth_mode: /^-?\d+$/.test(text) ? Number(text) : text });
        say(gatewayMessage, `Desired auth_mode of ${g.gw_id} set to ${text}.`);
        await reloadDevice();
      } catch (err) {
        say(gatewayMessage, err.message, 'error');
      }
    } }, el('label', { for: id, class: 'visually-hidden' }, `Desired auth_mode for ${g.gw_id}`), input,
    el('button', { type: 'submit' }, 'Set'));
  }

  function commandForm() {
    const out = message();
    out.id = 'command-message';
    const fields = el('div', { class: 'command-fields', id: 'command-fields' });
    const groups = new Map();
    for (const def of commandTypes.filter(t => !t.admin || may.administer())) {
      if (!groups.has(def.group)) groups.set(def.group, []);
      groups.get(def.group).push(def);
    }
    const type = el('select', { id: 'command-type', name: 'type', onchange: () => showFields() },
      [...groups].map(([group, defs]) => el('optgroup', { label: group }, defs.map(d => el('option', { value: d.type }, d.type)))));
    const current = () => commandTypes.find(t => t.type === type.value);

    function showFields() {
      const def = current();
      fill(fields, def.fields.length ? def.fields.map(f => input(f))
        : el('p', { class: 'help' }, `${def.type} takes no fields.`));
    }

    function input(f) {
      const id = `cmd-${f.name}`;
      const label = `${f.label}${f.required ? ' (required)' : ''}`;
      if (f.kind === 'bool') {
        return el('div', { class: 'field check' }, el('input', { id, name: f.name, type: 'checkbox' }), el('label', { for: id }, label));
      }
      let control;
      if (f.kind === 'gateway' && (device.gateways ?? []).length) {
        control = el('select', { id, name: f.name }, device.gateways.map(g => el('option', { value: g.gw_id }, g.gw_id)));
      } else if (f.kind === 'lines' || f.kind === 'json') {
        control = el('textarea', { id, name: f.name, rows: '3', placeholder: f.placeholder });
      } else {
        control = el('input', { id, name: f.name, type: f.secret ? 'password' : 'text', autocomplete: 'off',
          inputmode: f.kind === 'int' ? 'numeric' : null, placeholder: f.placeholder });
      }
      return el('div', { class: 'field' }, el('label', { for: id }, label), control);
    }

    const form = el('form', { class: 'card command', id: 'command-form', 'aria-labelledby': 'h-send', onsubmit: async e => {
      e.preventDefault();
      const def = current();
      const request = body(def, f => {
        const control = form.elements.namedItem(f.name);
        return f.kind === 'bool' ? control?.checked : control?.value;
      });
      say(out, `Sending ${def.type}…`, 'busy');
      try {
        const view = await api('POST', `${base}/commands`, request);
        say(out, `${view.type} ${view.command_id}: ${view.status}`);
        await reloadCommands();
      } catch (err) {
        say(out, err.message, 'error');
      }
    } },
    el('h2', { id: 'h-send' }, 'Send a command'),
    el('div', { class: 'field' }, el('label', { for: 'command-type' }, 'Type'), type),
    fields,
    el('button', { type: 'submit', id: 'send' }, 'Send'), out);
    showFields();
    return form;
  }

  function commandRow(c) {
    const answer = c.error ?? c.response?.message ?? (c.response ? JSON.stringify(c.response.data ?? c.response) : null);
    return el('tr', { dataset: { command: c.command_id } },
      el('td', {}, time(c.created_at)), el('td', {}, c.type),
      el('td', { class: 'cmd-status' }, statusBadge(c.status)),
      el('td', { class: 'mono' }, c.command_id), el('td', {}, time(c.sent_at)), el('td', { class: 'completed' }, time(c.completed_at)),
      el('td', { class: 'answer' }, answer ? el('code', { title: answer }, answer.length > 120 ? `${answer.slice(0, 117)}…` : answer) : '—'),
      el('td', {}, c.status === 'queued' && may.operate()
        ? el('button', { type: 'button', class: 'cancel', 'aria-label': `Cancel ${c.type} ${c.command_id}`,
          onclick: () => cancel(c) }, 'Cancel') : null));
  }

  async function cancel(c) {
    try {
      await api('DELETE', `${base}/commands/${enc(c.command_id)}`);
      say(historyMessage, `${c.type} ${c.command_id} cancelled.`);
    } catch (err) {
      say(historyMessage, err.message, 'error');
    }
    await reloadCommands();
  }

  async function reloadCommands() {
    const list = await api('GET', `${base}/commands`);
    fill(history, list.items.length ? list.items.map(commandRow) : el('tr', {}, el('td', { colspan: '8' }, 'No command yet.')));
  }

  async function reloadDevice() { showDevice(await api('GET', base)); }

  let deviceTimer = 0;
  const deviceSoon = () => { clearTimeout(deviceTimer); deviceTimer = setTimeout(() => reloadDevice().catch(() => {}), 300); };
  const status = e => {
    const tr = history.querySelector(`tr[data-command="${CSS.escape(e.command_id ?? '')}"]`);
    if (!tr) { reloadCommands().catch(() => {}); return; }
    fill(tr.querySelector('.cmd-status'), statusBadge(e.status));
    if (e.status !== 'queued') tr.querySelector('button.cancel')?.remove();
    // The answer, the completion time and what it changed (clients, firmware) come from the API.
    if (Final.has(e.status)) { reloadCommands().catch(() => {}); deviceSoon(); }
  };
  // This device's events only (its own alerts among them): one stream a tab.
  const stop = subscribe({ deviceId, onReconnect: () => { reloadDevice(); reloadCommands(); showAlerts(); } }, {
    ...alertHandlers,
    'device.online': () => { setOnline(badge, true); deviceSoon(); },
    'device.offline': () => { setOnline(badge, false); deviceSoon(); },
    'command.status': status,
  });

  showDevice(device);
  await reloadCommands();
  return () => { stop(); clearTimeout(deviceTimer); };
}

function duration(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s)) return String(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min ${Math.floor(s % 60)} s`;
}
