// Every command type the API takes (src/Fleet.Protocol: RequestKinds, the codec's required fields) and the fields of
// its body. The form checks nothing itself: what is wrong comes back as the API's own problem detail.
//
// kind: text (sent as typed), int (a whole number is sent as a number; anything else as typed, for the API to name),
// bool (a checkbox: true when ticked, else left out), lines (one item a line → an array), json (parsed, else sent as
// typed), gateway (a choice of the device's gateways, or free text when it reported none).

const mac = 'aa:bb:cc:dd:ee:ff';

export const commandTypes = [
  { type: 'kickoff', group: 'Clients', fields: [
    { name: 'client_ip', label: 'Client IP', required: true, placeholder: '192.168.1.23' },
    { name: 'client_mac', label: 'Client MAC', required: true, placeholder: mac },
    { name: 'gw_id', label: 'Gateway', kind: 'gateway', required: true }] },
  { type: 'auth', group: 'Clients', fields: [
    { name: 'client_ip', label: 'Client IP', required: true, placeholder: '192.168.1.23' },
    { name: 'client_mac', label: 'Client MAC', required: true, placeholder: mac },
    { name: 'gw_id', label: 'Gateway', kind: 'gateway', required: true },
    { name: 'token', label: 'Token', required: true },
    { name: 'client_name', label: 'Client name' },
    { name: 'once_auth', label: 'Once (sets the gateway\'s auth_mode to 0)', kind: 'bool' }] },
  { type: 'tmp_pass', group: 'Clients', fields: [
    { name: 'client_mac', label: 'Client MAC', required: true, placeholder: mac },
    { name: 'timeout', label: 'Pass length (seconds)', kind: 'int', placeholder: '300' }] },
  { type: 'get_client_info', group: 'Clients', fields: [
    { name: 'mac', label: 'Client MAC', required: true, placeholder: mac }] },
  { type: 'get_clients', group: 'Clients', fields: [] },
  { type: 'get_firmware_info', group: 'Firmware and system', fields: [] },
  { type: 'firmware_upgrade', group: 'Firmware and system', fields: [
    { name: 'url', label: 'Firmware URL', required: true, placeholder: 'https://…/sysupgrade.bin' },
    { name: 'force', label: 'Force', kind: 'bool' }] },
  { type: 'reboot_device', group: 'Firmware and system', fields: [] },
  { type: 'get_status', group: 'Firmware and system', fields: [] },
  { type: 'get_sys_info', group: 'Firmware and system', fields: [] },
  { type: 'get_device_info', group: 'Firmware and system', fields: [] },
  { type: 'update_device_info', group: 'Firmware and system', nest: 'device_info', fields: [
    { name: 'ap_device_id', label: 'AP device id' }, { name: 'ap_mac_address', label: 'AP MAC address', placeholder: mac },
    { name: 'ap_longitude', label: 'Longitude' }, { name: 'ap_latitude', label: 'Latitude' },
    { name: 'location_id', label: 'Location id' }] },
  { type: 'get_wifi_info', group: 'Wi-Fi', fields: [] },
  { type: 'set_wifi_info', group: 'Wi-Fi', fields: [
    { name: 'data', label: 'Radios (JSON object)', kind: 'json', required: true, placeholder: '{"radio0":{"channel":6}}' }] },
  { type: 'sync_trusted_domain', group: 'Trusted lists', fields: [
    { name: 'domains', label: 'Domains (one a line)', kind: 'lines', required: true }] },
  { type: 'get_trusted_domains', group: 'Trusted lists', fields: [] },
  { type: 'sync_trusted_wildcard_domains', group: 'Trusted lists', fields: [
    { name: 'domains', label: 'Wildcard domains (one a line)', kind: 'lines', required: true }] },
  { type: 'get_trusted_wildcard_domains', group: 'Trusted lists', fields: [] },
  { type: 'sync_trusted_mac', group: 'Trusted lists', fields: [
    { name: 'macs', label: 'MACs (one a line)', kind: 'lines', required: true }] },
  { type: 'get_trusted_mac', group: 'Trusted lists', fields: [] },
  { type: 'shell', group: 'Privileged (admin, 9.x)', admin: true, fields: [
    { name: 'command', label: 'Command', required: true }, { name: 'timeout', label: 'Timeout (1–30 s)', kind: 'int' }] },
  { type: 'set_websocket_serv', group: 'Privileged (admin, 9.x)', admin: true, fields: [
    { name: 'hostname', label: 'Host name' }, { name: 'port', label: 'Port', kind: 'int' }, { name: 'path', label: 'Path' },
    { name: 'use_ssl', label: 'Use TLS', kind: 'bool' }] },
  { type: 'set_auth_serv', group: 'Privileged (admin, 9.x)', admin: true, fields: [
    { name: 'hostname', label: 'Host name' }, { name: 'port', label: 'Port', kind: 'int' }, { name: 'path', label: 'Path' }] },
  { type: 'set_mqtt_serv', group: 'Privileged (admin, 9.x)', admin: true, fields: [
    { name: 'hostname', label: 'Host name' }, { name: 'port', label: 'Port', kind: 'int' },
    { name: 'username', label: 'User name' }, { name: 'password', label: 'Password', secret: true },
    { name: 'use_ssl', label: 'Use TLS', kind: 'bool' }] },
];

/** The request body from the form's values: empty fields are left out (the API says which one it needed). */
export function body(def, read) {
  const fields = {};
  for (const f of def.fields) {
    const v = read(f);
    if (f.kind === 'bool') { if (v) fields[f.name] = true; continue; }
    const text = String(v ?? '').trim();
    if (text === '') continue;
    if (f.kind === 'int') fields[f.name] = /^-?\d+$/.test(text) ? Number(text) : text;
    else if (f.kind === 'lines') fields[f.name] = text.split('\n').map(s => s.trim()).filter(Boolean);
    else if (f.kind === 'json') { try { fields[f.name] = JSON.parse(text); } catch { fields[f.name] = text; } }
    else fields[f.name] = text;
  }
  return def.nest ? { type: def.type, [def.nest]: fields } : { type: def.type, ...fields };
}
