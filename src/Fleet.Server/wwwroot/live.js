// Live updates from GET /api/v1/events (Server-Sent Events; the session cookie authenticates it). Events are live
// only: after a reconnect the page reads the current state again (onReconnect).

export function subscribe({ deviceId, types, onReconnect }, handlers) {
  const q = new URLSearchParams();
  if (deviceId) q.set('device_id', deviceId);
  if (types) q.set('types', types.join(','));
  const source = new EventSource(`/api/v1/events${q.size ? `?${q}` : ''}`);
  // 'on' once this page's stream is open (the node subscribes it before it answers): events from then on arrive.
  document.body.dataset.live = 'connecting';
  let opened = false;
  source.addEventListener('open', () => {
    if (opened && onReconnect) onReconnect();
    opened = true;
    document.body.dataset.live = 'on';
  });
  source.addEventListener('error', () => { document.body.dataset.live = 'off'; });
  for (const [type, handler] of Object.entries(handlers)) {
    source.addEventListener(type, e => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      handler(data);
    });
  }
  return () => source.close();
}
