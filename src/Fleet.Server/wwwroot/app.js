// The dashboard: hash routes (#/ the device list, #/devices/{id} a device, #/jobs the jobs and rollouts, #/jobs/{id} and
// #/rollouts/{id} one of them), a login form that turns an API key into a session cookie, and an alert banner. Every
// figure comes from the admin API (docs/ADMIN_API.md).
import { logIn, logOut, currentSession, whenUnauthorized, ApiError, session } from './api.js';
import { el, fill, message, say } from './ui.js';
import { showAlerts } from './alerts.js';
import { listPage } from './list.js';
import { devicePage } from './device.js';
import { jobsPage } from './jobs.js';
import { jobPage } from './job.js';

const main = document.getElementById('main');
let leavePage = () => {};

function loginPage(problem) {
  leavePage();
  document.title = 'Log in · Fleet';
  document.getElementById('who').hidden = true;
  document.getElementById('alerts').hidden = true;
  const out = message();
  out.setAttribute('role', 'alert');
  const input = el('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'current-password', required: true,
    'aria-describedby': 'key-help login-error' });
  out.id = 'login-error';
  const form = el('form', { class: 'card login', onsubmit: async e => {
    e.preventDefault();
    say(out, 'Logging in…', 'busy');
    try {
      const s = await logIn(input.value.trim());
      input.value = '';
      await started(s);
    } catch (err) {
      say(out, err instanceof ApiError ? err.message : String(err), 'error');
      input.select();
    }
  } },
  el('h1', { tabindex: '-1' }, 'Log in to Fleet'),
  el('label', { for: 'key' }, 'API key'), input,
  el('p', { id: 'key-help', class: 'help' }, 'A key of the admin API, of any role: a node writes its first admin key to data/admin.key beside its database.'),
  el('button', { type: 'submit' }, 'Log in'), out);
  fill(main, form);
  if (problem) say(out, problem, 'error');
  input.focus();
}

async function started(s) {
  session.keyName = s.key_name;
  session.role = s.role;
  document.getElementById('who-name').textContent = `${s.key_name} (${s.role})`;
  document.getElementById('who').hidden = false;
  await route();
}

async function route() {
  if (!session.role) return;
  leavePage();
  leavePage = () => {};
  const hash = location.hash || '#/';
  const params = new URLSearchParams(hash.split('?')[1] ?? '');
  const device = /^#\/devices\/([^?]+)/.exec(hash);
  const job = /^#\/(jobs|rollouts)\/([^?]+)/.exec(hash);
  const jobs = /^#\/(jobs|rollouts)\/?(\?|$)/.exec(hash);
  if (jobs?.[1] === 'rollouts' && !params.has('kind')) params.set('kind', 'rollout');
  for (const a of document.querySelectorAll('.top nav a')) {
    const section = a.getAttribute('href') === '#/jobs' ? (job || jobs) : !(job || jobs);
    if (section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  showAlerts();
  try {
    leavePage = device ? await devicePage(main, decodeURIComponent(device[1]))
      : job ? await jobPage(main, decodeURIComponent(job[2]), job[1] === 'rollouts')
        : jobs ? await jobsPage(main, params)
          : await listPage(main, params);
  } catch (err) {
    fill(main, el('h1', { tabindex: '-1' }, 'Something went wrong'), el('p', { role: 'alert' }, err.message ?? String(err)),
      el('p', {}, el('a', { href: '#/' }, 'Back to the device list')));
  }
  // The new page's heading takes the focus (screen readers announce it), unless the person already moved it into the
  // page while its data loaded: a search box they are typing into keeps it.
  if (!main.contains(document.activeElement)) (main.querySelector('h1') ?? main).focus?.();
}

whenUnauthorized(() => {
  session.role = null;
  loginPage('Your session ended (the key was removed, or you logged out elsewhere): log in again.');
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await logOut(); } catch { /* the cookie is cleared by the answer; a failed call leaves it to expire with the browser */ }
  session.role = null;
  loginPage();
});

window.addEventListener('hashchange', route);

(async () => {
  try {
    await started(await currentSession());
  } catch {
    loginPage();
  }
})();
