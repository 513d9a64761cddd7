// The open alerts, in a banner above every page. Each page's one event stream says when they change
// (alert.opened / alert.resolved): one stream a tab, as browsers allow only a few connections per server.
import { api } from './api.js';
import { el, fill } from './ui.js';

export async function showAlerts() {
  const box = document.getElementById('alerts');
  let items;
  try {
    items = (await api('GET', '/api/v1/alerts?state=open&limit=20')).items ?? [];
  } catch {
    box.hidden = true;
    return;
  }
  box.hidden = items.length === 0;
  fill(box, el('h2', {}, `Open alerts (${items.length})`),
    el('ul', {}, items.map(a => el('li', { dataset: { alert: a.alert_id } },
      el('strong', {}, a.rule), ' ',
      a.device_id ? el('a', { href: `#/devices/${encodeURIComponent(a.device_id)}` }, a.device_id) : (a.node ?? ''),
      ': ', a.summary ?? ''))));
}

export const alertHandlers = { 'alert.opened': showAlerts, 'alert.resolved': showAlerts };
