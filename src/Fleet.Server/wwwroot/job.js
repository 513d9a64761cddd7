// #/jobs/{id} and #/rollouts/{id} — one job or rollout (docs/ADMIN_API.md "Jobs", "Rollouts"): its status, progress and
// devices per status, a rollout's plan and a bar per stage, each device's result (a status filter, 50 a page), and for
// operators the buttons its status allows. No event tells of a job's progress: the page reads it again every few
// seconds until the job is final.
import { api, enc, may, ApiError } from './api.js';
import { el, fill, facts, message, say, statusBadge, table, time, when } from './ui.js';
import {
  FinalJob, PollMs, CommandDeviceStatuses, RolloutDeviceStatuses, InProgressDevice, finished, count, progress, jobStatusBadge,
} from './jobs.js';

const PageSize = 50;

export async function jobPage(main, jobId, asRollout) {
  let base = `/api/v1/${asRollout ? 'rollouts' : 'jobs'}/${enc(jobId)}`;
  let job;
  try {
    job = await api('GET', base);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    document.title = `${jobId} · Fleet`;
    fill(main, el('h1', { tabindex: '-1' }, jobId), el('p', { role: 'alert' }, err.message),
      el('p', {}, el('a', { href: '#/jobs' }, 'Back to the jobs')));
    return () => {};
  }
  const rollout = job.kind === 'rollout' || !!job.rollout;
  if (rollout && !asRollout) base = `/api/v1/rollouts/${enc(jobId)}`;
  const what = rollout ? 'rollout' : 'job';
  document.title = `${job.name || jobId} · Fleet`;

  let timer = 0;
  let left = false;
  let shownStatus = null;
  let shownDevices = null;
  let confirming = null;
  const cursors = [null];
  let next = null;

  const status = el('span', { id: 'job-status', 'aria-live': 'polite' });
  const summary = el('div', { id: 'job-facts' });
  const overall = el('div', { id: 'job-progress', class: 'job-progress' });
  const counts = el('section', { class: 'counts', 'aria-label': 'Devices per status', id: 'job-counts' });
  const controls = el('div', { class: 'job-controls', id: 'job-controls', role: 'group', 'aria-label': `Change this ${what}` });
  const out = message();
  out.id = 'job-message';
  const plan = el('div', { id: 'rollout-plan' });
  const stages = el('ol', { class: 'stages', id: 'stages' });
  const problem = el('p', { class: 'message error', role: 'alert', id: 'job-problem', hidden: true });

  const deviceStatus = el('select', { id: 'device-status', name: 'status', onchange: () => reloadDevices(true) },
    el('option', { value: '' }, 'any'),
    (rollout ? RolloutDeviceStatuses : CommandDeviceStatuses).map(s => el('option', { value: s }, s.replace('_', ' '))));
  const deviceStage = rollout
    ? el('select', { id: 'device-stage', name: 'stage', onchange: () => reloadDevices(true) }, el('option', { value: '' }, 'any'),
      (job.rollout?.stages ?? []).map(s => el('option', { value: String(s.index) }, stageName(s.index))))
    : null;
  const rows = el('tbody');
  const pageNote = el('span', { id: 'devices-page-note', 'aria-live': 'polite' });
  const previous = el('button', { type: 'button', id: 'devices-previous', onclick: () => { cursors.pop(); reloadDevices(); } }, 'Previous');
  const nextButton = el('button', { type: 'button', id: 'devices-next', onclick: () => { cursors.push(next); reloadDevices(); } }, 'Next');
  const field = (id, label, control) => el('div', { class: 'field' }, el('label', { for: id }, label), control);

  fill(main,
    el('p', { class: 'crumbs' }, el('a', { href: '#/jobs' }, '← Jobs')),
    el('h1', { tabindex: '-1' }, job.name || jobId, ' ', status),
    el('div', { class: 'columns' },
      el('section', { 'aria-labelledby': 'h-job' }, el('h2', { id: 'h-job' }, rollout ? 'Rollout' : 'Job'), summary),
      el('section', { 'aria-labelledby': 'h-progress' }, el('h2', { id: 'h-progress' }, 'Progress'), overall, counts,
        may.operate() ? [controls, out] : el('p', { class: 'help', id: 'read-only' },
          `Your key has the viewer role: it may read, not pause, resume or stop a ${what}.`))),
    rollout ? el('section', { 'aria-labelledby': 'h-plan' }, el('h2', { id: 'h-plan' }, 'Plan'), plan) : null,
    rollout ? el('section', { 'aria-labelledby': 'h-stages' }, el('h2', { id: 'h-stages' }, 'Stages'), stages) : null,
    el('section', { 'aria-labelledby': 'h-devices' },
      el('h2', { id: 'h-devices' }, 'Devices'),
      el('form', { class: 'filters compact', role: 'search', 'aria-label': 'Filter devices', onsubmit: e => { e.preventDefault(); reloadDevices(true); } },
        field('device-status', 'Status', deviceStatus), deviceStage ? field('device-stage', 'Stage', deviceStage) : null),
      problem,
      table(`Each device's result in this ${what}`, ['Device', 'Status', ...(rollout ? ['Stage'] : []), 'Command id', 'Error', 'Updated'],
        rows, { id: 'job-devices' }),
      el('nav', { class: 'pager', 'aria-label': 'Pages of devices' }, previous, pageNote, nextButton)));

  function show(j) {
    job = j;
    fill(status, jobStatusBadge(j.status));
    const done = finished(j.counts);
    fill(overall, progress(done, j.total ?? 0, `${done} of ${j.total ?? 0} devices finished`),
      el('span', { class: 'help' }, ` devices finished${FinalJob.has(j.status) ? '' : ' (read again every few seconds)'}`));
    fill(counts, el('dl', {}, Object.entries(j.counts ?? {}).filter(([, n]) => n > 0)
      .map(([s, n]) => el('div', { class: 'count', dataset: { status: s } }, el('dt', {}, s.replace('_', ' ')), el('dd', {}, n)))));
    fill(summary, facts([
      ['Id', el('span', { class: 'mono' }, j.job_id)], ['Status', j.status?.replace('_', ' ')],
      ['Reason', j.reason], ['Created', `${when(j.created_at)}${j.created_by ? ` by ${j.created_by}` : ''}`],
      ['Deadline', j.deadline ? when(j.deadline) : null], ['Finished', j.finished_at ? when(j.finished_at) : null],
      ['Rate', j.rate_per_minute != null ? `${j.rate_per_minute} devices a minute` : null],
      // A rollout's offline devices wait for their turn (its stages say how many); a command job's may be skipped.
      ['Offline devices', rollout || j.wait_offline == null ? null : j.wait_offline ? 'wait in their queue until the deadline' : 'skipped'],
      ['Command', j.command ? el('code', {}, JSON.stringify(j.command)) : null],
      ['Selection', j.selection ? el('code', {}, JSON.stringify(given(j.selection))) : null],
    ]));
    if (rollout) showRollout(j.rollout ?? {});
    if (may.operate() && j.status !== shownStatus) showControls(j.status);
    shownStatus = j.status;
  }

  function showRollout(r) {
    const a = r.abort ?? { failure_percent: r.abort_failure_percent, min_finished: r.abort_min_finished };
    fill(plan, facts([
      ['Firmware', r.url ? el('code', {}, r.url) : null], ['Release', r.release], ['Revision', r.revision],
      ['Current stage', r.current_stage != null ? stageName(r.current_stage) : null],
      ['Abort rule', a.failure_percent != null
        ? `abort when more than ${a.failure_percent} % of a stage's finished devices failed, once ${a.min_finished ?? 1} of it finished` : null],
      ['Windows', (r.windows ?? []).length
        ? `${r.windows.map(w => typeof w === 'string' ? w.replace('-', '–') : `${w.start}–${w.end}`).join(', ')} (${r.zone_tag ? `the device's tag ${r.zone_tag}, else ` : ''}${r.zone ?? 'UTC'})`
        : 'any time'],
      ['Approval', r.approval ? 'each stage after the canary waits for an operator' : 'none'],
      ['Device timeout', r.device_timeout_seconds != null ? `${r.device_timeout_seconds} s` : null],
      ['Retries', r.retries],
    ]));
    fill(stages, (r.stages ?? []).map(s => {
      const c = s.counts ?? {};
      const done = finished(c);
      const current = s.index === r.current_stage;
      const figure = (label, n, cls) => el('div', { class: `stage-count ${cls}` }, el('dt', {}, label), el('dd', {}, n));
      return el('li', { class: `stage${current ? ' current' : ''}`, dataset: { stage: String(s.index) },
        'aria-current': current ? 'step' : null },
      el('h3', {}, stageName(s.index), ' ', jobStatusBadge(s.status), current ? el('span', { class: 'current-mark' }, 'current') : null),
      progress(done, s.size ?? 0, `${stageName(s.index)}: ${done} of ${s.size ?? 0} finished`),
      el('dl', { class: 'stage-counts' },
        figure('upgraded', count(c, 'upgraded'), 'upgraded'), figure('already', count(c, 'already'), 'already'),
        figure('failed', count(c, 'failed'), 'failed'), figure('waiting', count(c, 'waiting'), 'waiting'),
        figure('in progress', InProgressDevice.reduce((n, st) => n + count(c, st), 0), 'in-progress'),
        figure('pending', count(c, 'pending'), 'pending'),
        count(c, 'skipped') ? figure('skipped', count(c, 'skipped'), 'skipped') : null));
    }));
  }

  /** The buttons the status allows; Cancel and Abort ask once more before they act. */
  function showControls(s) {
    const hadFocus = controls.contains(document.activeElement);
    confirming = null;
    const button = (action, label, extra = {}) =>
      el('button', { type: 'button', id: action, class: extra.danger ? 'danger' : null, onclick: () => extra.confirm ? confirm(action, label, extra.confirm) : act(action) }, label);
    const buttons = rollout ? [
      s === 'awaiting_approval' ? button('approve', 'Approve the next stage') : null,
      s === 'running' ? button('pause', 'Pause') : null,
      s === 'paused' ? button('resume', 'Resume') : null,
      !FinalJob.has(s) ? button('abort', 'Abort rollout', { danger: true, confirm: 'Abort this rollout? Nothing more is sent; devices already upgrading finish as they will.' }) : null,
    ] : [
      s === 'running' ? button('pause', 'Pause') : null,
      s === 'paused' ? button('resume', 'Resume') : null,
      !FinalJob.has(s) ? button('cancel', 'Cancel job', { danger: true, confirm: 'Cancel this job? Nothing more is sent and the commands still queued on devices are cancelled.' }) : null,
    ];
    const any = buttons.some(Boolean);
    fill(controls, any ? buttons : el('p', { class: 'help' }, `This ${what} has ended: nothing to change.`));
    if (hadFocus) (controls.querySelector('button') ?? main.querySelector('h1')).focus();
  }

  function confirm(action, label, text) {
    confirming = action;
    const yes = el('button', { type: 'button', id: 'confirm-yes', class: 'danger', onclick: () => act(action) }, `Yes, ${label.toLowerCase()}`);
    fill(controls, el('p', { id: 'confirm-text' }, text), yes,
      el('button', { type: 'button', id: 'confirm-no', class: 'secondary', onclick: () => { shownStatus = null; show(job); controls.querySelector('button')?.focus(); } }, 'No'));
    yes.setAttribute('aria-describedby', 'confirm-text');
    yes.focus();
  }

  async function act(action) {
    for (const b of controls.querySelectorAll('button')) b.disabled = true;
    say(out, `${action}…`, 'busy');
    try {
      const view = await api('POST', `${base}/${action}`);
      shownStatus = null;
      show(view);
      controls.querySelector('button')?.focus();
      say(out, `${rollout ? 'Rollout' : 'Job'} ${view.status.replace('_', ' ')}.`);
      await reloadDevices();
      schedule();
    } catch (err) {
      say(out, err.message, 'error');
      shownStatus = null;
      await refresh();
    }
  }

  function deviceRow(d) {
    return el('tr', { dataset: { device: d.device_id } },
      el('th', { scope: 'row' }, el('a', { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id)),
      el('td', { class: 'device-status' }, statusBadge(d.status)),
      rollout ? el('td', {}, d.stage != null ? stageName(d.stage) : '—') : null,
      el('td', { class: 'mono' }, d.command_id ?? '—'),
      el('td', { class: 'answer' }, d.error ?? '—'),
      el('td', {}, time(d.updated_at)));
  }

  async function reloadDevices(fromStart = false) {
    if (fromStart) { cursors.splice(1); shownDevices = null; }
    const q = new URLSearchParams({ limit: String(PageSize) });
    if (deviceStatus.value) q.set('status', deviceStatus.value);
    if (deviceStage?.value) q.set('stage', deviceStage.value);
    if (cursors.at(-1)) q.set('cursor', cursors.at(-1));
    let page;
    try {
      page = await api('GET', `${base}/devices?${q}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      problem.hidden = false;
      problem.textContent = err.message;
      return;
    }
    if (left) return;
    problem.hidden = true;
    next = page.next_cursor;
    const items = page.items ?? [];
    const text = JSON.stringify(items);
    if (text !== shownDevices) {
      const focused = rows.contains(document.activeElement) ? document.activeElement.closest('tr')?.dataset.device : null;
      fill(rows, items.length ? items.map(deviceRow)
        : el('tr', {}, el('td', { colspan: rollout ? '6' : '5' }, 'No device in this status.')));
      shownDevices = text;
      if (focused) rows.querySelector(`tr[data-device="${CSS.escape(focused)}"] a`)?.focus();
    }
    const first = (cursors.length - 1) * PageSize;
    pageNote.textContent = items.length ? `Page ${cursors.length}: devices ${first + 1}–${first + items.length}` : `Page ${cursors.length}`;
    previous.disabled = cursors.length === 1;
    nextButton.disabled = !next;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const view = await api('GET', base);
      if (left) return;
      // A confirmation being answered stays until it is; the rest follows the job.
      if (confirming && !FinalJob.has(view.status)) { job = view; } else show(view);
      await reloadDevices();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) return;
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (!left && !FinalJob.has(job.status)) timer = setTimeout(refresh, PollMs);
  }

  show(job);
  await reloadDevices();
  schedule();
  return () => { left = true; clearTimeout(timer); };
}

/** A selection with only the fields it sets (a view may spell out every field, null or false). */
function given(selection) {
  return Object.fromEntries(Object.entries(selection).filter(([, v]) => v !== null && v !== false));
}

export function stageName(index) {
  return Number(index) === 0 ? 'Canary' : `Wave ${index}`;
}
