// #/jobs — jobs and rollouts (GET /api/v1/jobs, docs/ADMIN_API.md "Jobs"), newest first: kind, status, progress
// (finished/total), 50 a page. The event stream carries no job events: while a job on the page is not final, the page
// reads the list again every few seconds.
import { api, query, ApiError } from './api.js';
import { el, fill, table, time } from './ui.js';

const PageSize = 50;
export const PollMs = 3000;

/** Job statuses after which nothing changes. */
export const FinalJob = new Set(['completed', 'cancelled', 'aborted']);
/** Device statuses that end a device's part in a job or rollout. */
export const FinishedDevice = new Set(['offline', 'skipped', 'delivered', 'succeeded', 'failed', 'timed_out', 'expired', 'cancelled',
  'upgraded', 'already']);
/** A rollout device between its turn and its outcome. */
export const InProgressDevice = ['checking', 'upgrading', 'rebooting', 'verifying'];
export const JobStatuses = ['running', 'paused', 'awaiting_approval', 'completed', 'cancelled', 'aborted'];
export const CommandDeviceStatuses = ['pending', 'queued', 'sent', 'delivered', 'succeeded', 'failed', 'timed_out', 'expired',
  'cancelled', 'offline', 'skipped'];
export const RolloutDeviceStatuses = ['pending', 'waiting', 'checking', 'upgrading', 'rebooting', 'verifying', 'upgraded', 'already',
  'failed', 'skipped'];

export function finished(counts) {
  return Object.entries(counts ?? {}).reduce((n, [s, c]) => n + (FinishedDevice.has(s) ? Number(c) || 0 : 0), 0);
}

export const count = (counts, status) => Number(counts?.[status] ?? 0) || 0;

/** A bar of finished/total with the figures as text beside it (never only a bar). */
export function progress(done, total, label) {
  return el('span', { class: 'progress' },
    el('progress', { max: String(Math.max(total, 1)), value: String(total ? done : 0), 'aria-label': label }),
    el('span', { class: 'progress-text' }, `${done}/${total}`));
}

export function jobLink(j) {
  const kind = j.kind === 'rollout' ? 'rollouts' : 'jobs';
  return `#/${kind}/${encodeURIComponent(j.job_id)}`;
}

export async function jobsPage(main, params) {
  document.title = 'Jobs · Fleet';
  const filters = { kind: params.get('kind') ?? '', status: params.get('status') ?? '' };
  const cursors = [null];
  let next = null;
  let timer = 0;
  let left = false;
  let shown = null;

  const problem = el('p', { class: 'message error', role: 'alert', id: 'jobs-problem', hidden: true });
  const tbody = el('tbody');
  const pageNote = el('span', { id: 'jobs-page-note', 'aria-live': 'polite' });
  const previous = el('button', { type: 'button', id: 'jobs-previous', onclick: () => { cursors.pop(); shown = null; load(); } }, 'Previous');
  const nextButton = el('button', { type: 'button', id: 'jobs-next', onclick: () => { cursors.push(next); shown = null; load(); } }, 'Next');
  const field = (id, label, control) => el('div', { class: 'field' }, el('label', { for: id }, label), control);
  const select = (id, name, value, options) => el('select', { id, name },
    options.map(([v, text]) => el('option', { value: v, selected: v === value }, text)));
  const form = el('form', { class: 'filters compact', role: 'search', 'aria-label': 'Filter jobs', onsubmit: e => {
    e.preventDefault();
    const data = new FormData(form);
    const hash = `#/jobs${query(Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v)])))}`;
    if (hash === location.hash) { cursors.splice(1); shown = null; load(); } else location.hash = hash;
  } },
  field('job-kind', 'Kind', select('job-kind', 'kind', filters.kind, [['', 'any'], ['command', 'command jobs'], ['rollout', 'rollouts']])),
  field('job-status', 'Status', select('job-status', 'status', filters.status, [['', 'any'], ...JobStatuses.map(s => [s, s.replace('_', ' ')])])),
  el('div', { class: 'field actions' }, el('button', { type: 'submit' }, 'Show')));

  fill(main,
    el('h1', { tabindex: '-1' }, 'Jobs'),
    el('p', { class: 'help' }, 'Bulk commands and firmware rollouts, newest first. Create them with fleetctl jobs create, ',
      'fleetctl rollouts create, or POST /api/v1/jobs and /api/v1/rollouts.'),
    form, problem,
    table('Jobs and rollouts', ['Job', 'Kind', 'Status', 'Progress (finished/total)', 'Created', 'By'], tbody, { id: 'jobs' }),
    el('nav', { class: 'pager', 'aria-label': 'Pages' }, previous, pageNote, nextButton));

  function row(j) {
    const done = finished(j.counts);
    return el('tr', { dataset: { job: j.job_id } },
      el('th', { scope: 'row' }, el('a', { href: jobLink(j) }, j.name || j.job_id),
        j.name ? el('span', { class: 'sub mono' }, j.job_id) : null),
      el('td', { class: 'job-kind' }, j.kind),
      el('td', { class: 'job-status' }, jobStatusBadge(j.status)),
      el('td', { class: 'job-progress' }, progress(done, j.total ?? 0, `${j.name || j.job_id}: ${done} of ${j.total ?? 0} finished`)),
      el('td', {}, time(j.created_at)),
      el('td', {}, j.created_by ?? '—'));
  }

  async function load() {
    clearTimeout(timer);
    problem.hidden = true;
    let page;
    try {
      page = await api('GET', `/api/v1/jobs${query({ ...filters, limit: PageSize, cursor: cursors.at(-1) })}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      problem.hidden = false;
      problem.textContent = err.message;
      return;
    }
    if (left) return;
    next = page.next_cursor;
    const items = page.items ?? [];
    // A page read again unchanged is left as it is; a changed one keeps the focus on the job it was on.
    const text = JSON.stringify(items);
    if (text !== shown) {
      const focused = tbody.contains(document.activeElement) ? document.activeElement.closest('tr')?.dataset.job : null;
      fill(tbody, items.length ? items.map(row) : el('tr', {}, el('td', { colspan: '6' }, 'No job yet.')));
      shown = text;
      if (focused) tbody.querySelector(`tr[data-job="${CSS.escape(focused)}"] a`)?.focus();
    }
    const first = (cursors.length - 1) * PageSize;
    pageNote.textContent = items.length ? `Page ${cursors.length}: jobs ${first + 1}–${first + items.length}` : `Page ${cursors.length}`;
    previous.disabled = cursors.length === 1;
    nextButton.disabled = !next;
    // A job still going changes without an event: read the page again in a few seconds.
    if (items.some(j => !FinalJob.has(j.status))) timer = setTimeout(() => load().catch(() => {}), PollMs);
  }

  await load();
  return () => { left = true; clearTimeout(timer); };
}

export function jobStatusBadge(status) {
  return el('span', { class: `status j-${status}` }, String(status ?? '—').replace('_', ' '));
}
