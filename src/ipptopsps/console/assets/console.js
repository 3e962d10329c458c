/* global document, window, fetch, sessionStorage, URLSearchParams, setTimeout, clearTimeout */
// The console page: polls /api/overview, renders the tables, and sends the few writes the
// operator makes (client requests, config edits). Plain DOM, no framework, no build step.
'use strict';

(function main() {
  const STAGE_LABELS = {
    processed: 'processed', loaded_to_datastore: 'loaded_to_datastore', loaded_to_odm: 'loaded_to_ODM',
    merge_worthy: 'merge_worthy', merged: 'merged', deleted_datastore: 'deleted_datastore',
    deleted_dxlayer: 'deleted_dxlayer', deleted_local: 'deleted_local',
  };
  const $ = (id) => document.getElementById(id);
  const state = { fields: [], overview: null, editing: null, timer: undefined, refreshSeconds: 3 };

  // Token: from the address's fragment (the command prints such a link), else what was typed.
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get('token');
  if (fromHash) sessionStorage.setItem('ipptopsps-console-token', fromHash);
  $('token').value = sessionStorage.getItem('ipptopsps-console-token') || '';
  $('token').addEventListener('change', () => sessionStorage.setItem('ipptopsps-console-token', $('token').value));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'className') node.className = v;
      else if (k === 'onclick') node.addEventListener('click', v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof window.Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: columns, className: 'empty' }, emptyText))]));
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return '';
    if (seconds < 120) return `${seconds} s ago`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h ago`;
    return `${(seconds / 86400).toFixed(1)} d ago`;
  }

  // Times are stored as ISO-8601 UTC; shown to the second, still in UTC.
  function when(iso) {
    if (!iso) return '';
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(iso);
    return m ? `${m[1]} ${m[2]}` : iso;
  }

  function figure(v) {
    if (v === null || v === undefined) return '';
    return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(1);
  }

  function showMessage(text) {
    const box = $('message');
    box.textContent = text || '';
    box.hidden = !text;
  }

  async function api(method, path, body) {
    const headers = { accept: 'application/json' };
    const token = $('token').value.trim();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const error = new Error((data.error && data.error.message) || `${method} ${path}: HTTP ${res.status}`);
      error.code = data.error && data.error.code;
      error.field = data.error && data.error.field;
      error.status = res.status;
      throw error;
    }
    return data;
  }

  async function write(method, path, body) {
    try {
      const out = await api(method, path, body);
      showMessage('');
      return out;
    } catch (error) {
      if (error.status === 401 || error.status === 403) $('token-box').hidden = false;
      throw error;
    }
  }

  // ---- clients
  function renderClients(clients) {
    const rows = clients.map((c) => {
      const action = (name, enabled) => el('button', {
        type: 'button', 'data-action': name, 'data-client': c.clientId, disabled: !enabled,
        onclick: () => write('POST', `api/clients/${c.clientId}/${name}`).then(refresh, (e) => showMessage(e.message)),
      }, name);
      const live = c.state === 'running' || c.state === 'paused';
      return el('tr', { 'data-client-id': c.clientId, className: c.heartbeatAgeSeconds > 60 && live ? 'stale' : undefined },
        el('td', { className: 'n' }, c.clientId), el('td', {}, c.program), el('td', {}, c.config ?? ''), el('td', {}, c.host ?? ''),
        el('td', { className: 'n' }, c.pid ?? ''), el('td', { className: 'heartbeat' }, age(c.heartbeatAgeSeconds)),
        el('td', { className: `state state-${c.state}`, title: c.detail ?? undefined }, c.state), el('td', { className: 'request' }, c.request ?? ''),
        el('td', {}, c.currentItem ?? ''),
        el('td', {}, action('pause', c.state === 'running'), action('resume', c.state === 'paused'), action('stop', live)));
    });
    fill(document.querySelector('#clients tbody'), rows, 10, 'no clients registered');
  }

  // ---- configs
  function renderConfigs(configs) {
    const select = $('config-filter');
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '' }, 'all'), ...configs.map((c) => el('option', { value: c.name }, c.name)));
    select.value = configs.some((c) => c.name === chosen) ? chosen : '';
    const rows = configs.map((c) => {
      const v = c.values;
      return el('tr', { 'data-config': c.name },
        el('td', {}, c.name), el('td', { className: 'active' }, c.active ? 'yes' : 'no'), el('td', {}, v.datastore_product ?? ''),
        el('td', {}, Number(v.datastore_publish) ? 'yes' : 'no'), el('td', {}, v.gpc1_label ?? ''), el('td', {}, v.dvo_label ?? ''),
        el('td', {}, v.batch_types ?? ''), el('td', {}, when(c.updatedAt)),
        el('td', {},
          el('button', { type: 'button', 'data-action': 'edit', onclick: () => openForm(c) }, 'edit'),
          el('button', {
            type: 'button', 'data-action': c.active ? 'deactivate' : 'activate',
            onclick: () => write('POST', `api/configs/${encodeURIComponent(c.name)}/${c.active ? 'deactivate' : 'activate'}`)
              .then(refresh, (e) => showMessage(e.message)),
          }, c.active ? 'deactivate' : 'activate')));
    });
    fill(document.querySelector('#configs tbody'), rows, 9, 'no configs yet: make one with "new config"');
  }

  function openForm(config) {
    state.editing = config ? config.name : '';
    $('config-form-title').textContent = config ? `Edit config ${config.name}` : 'New config';
    const box = $('config-fields');
    const inputs = [];
    if (!config) {
      inputs.push(el('label', { for: 'field-name' }, 'name'),
        el('input', { id: 'field-name', name: 'name', 'data-field': 'name', required: true }));
    }
    for (const f of state.fields) {
      const current = config ? config.values[f.name] : undefined;
      const value = current === undefined || current === null ? (config ? '' : (f.default ?? '')) : current;
      inputs.push(el('label', { for: `field-${f.name}` }, f.name),
        el('input', {
          id: `field-${f.name}`, name: f.name, 'data-field': f.name, value: String(value),
          placeholder: f.default === undefined || f.default === null ? f.type : `default ${f.default}`,
        }));
      if (f.help) inputs.push(el('div', { className: 'help' }, `${f.type}: ${f.help}`));
    }
    box.replaceChildren(...inputs);
    $('config-error').textContent = '';
    $('config-form').hidden = false;
  }

  $('new-config').addEventListener('click', () => openForm(null));
  $('config-cancel').addEventListener('click', () => { $('config-form').hidden = true; state.editing = null; });
  $('config-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = {};
    for (const input of $('config-fields').querySelectorAll('input[data-field]')) {
      input.classList.remove('invalid');
      if (input.dataset.field !== 'name') values[input.dataset.field] = input.value;
    }
    try {
      if (state.editing) {
        await write('PUT', `api/configs/${encodeURIComponent(state.editing)}`, { values });
      } else {
        await write('POST', 'api/configs', { name: $('field-name').value, values });
      }
      $('config-error').textContent = '';
      $('config-form').hidden = true;
      state.editing = null;
      await refresh();
    } catch (error) {
      $('config-error').textContent = error.message;
      const bad = error.field && $('config-fields').querySelector(`input[data-field="${error.field}"]`);
      if (bad) { bad.classList.add('invalid'); bad.focus(); }
    }
  });

  // ---- batches
  function renderStages(rows) {
    const stages = Object.keys(STAGE_LABELS);
    const head = document.querySelector('#stages thead');
    head.replaceChildren(
      el('tr', {}, el('th', { rowspan: 2 }, 'config'), el('th', { rowspan: 2 }, 'type'), el('th', { rowspan: 2 }, 'queued'),
        el('th', { rowspan: 2 }, 'batches'), ...stages.map((s) => el('th', { colspan: 3 }, STAGE_LABELS[s]))),
      el('tr', {}, ...stages.flatMap(() => [el('th', {}, 'Pend'), el('th', {}, 'Succ'), el('th', {}, 'Fail')])));
    const blank = (n) => (n ? n : '');
    const body = rows.map((r) => el('tr', { 'data-stage-row': `${r.config}/${r.batchType}` },
      el('td', {}, r.config), el('td', {}, r.batchType), el('td', { className: 'n' }, r.queue.total),
      el('td', { className: 'n' }, r.batches),
      ...stages.flatMap((s) => [
        el('td', { className: 'n', 'data-stage': s, 'data-count': 'pending' }, blank(r.stages[s].pending)),
        el('td', { className: 'n', 'data-stage': s, 'data-count': 'succeeded' }, blank(r.stages[s].succeeded)),
        el('td', { className: r.stages[s].failed ? 'n fail' : 'n', 'data-stage': s, 'data-count': 'failed' }, blank(r.stages[s].failed)),
      ])));
    fill(document.querySelector('#stages tbody'), body, 4 + 3 * stages.length, 'no batches or queue items yet');
  }

  function renderFailed(batches, items) {
    fill(document.querySelector('#failed tbody'), batches.map((b) => el('tr', { 'data-batch': b.name },
      el('td', {}, b.name), el('td', {}, b.config), el('td', {}, b.batchType), el('td', {}, b.sourceId ?? ''),
      el('td', { className: 'fail' }, b.failedStages.map((s) => STAGE_LABELS[s]).join(', ')),
      el('td', { className: 'reason' }, b.reason ?? ''), el('td', {}, when(b.createdAt)))), 7, 'no failed batches');
    fill(document.querySelector('#failed-items tbody'), items.map((i) => el('tr', { 'data-item': i.itemId },
      el('td', { className: 'n' }, i.itemId), el('td', {}, i.config), el('td', {}, i.batchType), el('td', {}, i.sourceId ?? ''),
      el('td', { className: 'n' }, i.attempts), el('td', { className: 'reason' }, i.reason ?? ''), el('td', {}, when(i.updatedAt)))),
    7, 'no failed queue items');
  }

  function renderLatest(batches) {
    const stages = Object.keys(STAGE_LABELS);
    document.querySelector('#latest thead').replaceChildren(el('tr', {},
      ...['batch', 'config', 'type', 'source', 'rows', 'created'].map((h) => el('th', {}, h)),
      ...stages.map((s) => el('th', {}, STAGE_LABELS[s])), el('th', {}, 'purged')));
    fill(document.querySelector('#latest tbody'), batches.map((b) => el('tr', { 'data-batch': b.name },
      el('td', {}, b.name), el('td', {}, b.config), el('td', {}, b.batchType), el('td', {}, b.sourceId ?? ''),
      el('td', { className: 'n' }, b.nRows ?? ''), el('td', {}, when(b.createdAt)),
      ...stages.map((s) => el('td', { className: b.stages[s] === 'failed' ? 'fail' : undefined }, b.stages[s] ?? '')),
      el('td', {}, b.purged ? 'yes' : ''))), 7 + stages.length, 'no batches yet');
  }

  function renderMetrics(metrics, plots) {
    // The per-stage counts of a snapshot repeat the live stage table above; the rest is the summary.
    const stageCount = new RegExp(`^(${Object.keys(STAGE_LABELS).join('|')})_(pending|succeeded|failed)$`);
    const blocks = metrics.map((m) => {
      const names = Object.keys(m.values).filter((n) => !stageCount.test(n));
      const types = [...new Set(names.flatMap((n) => Object.keys(m.values[n])))];
      return el('div', { className: 'metrics-config', 'data-metrics': m.config },
        el('h3', {}, `${m.config} at ${when(m.at)} UTC`),
        el('table', {},
          el('thead', {}, el('tr', {}, el('th', {}, 'metric'), ...types.map((t) => el('th', {}, t)))),
          el('tbody', {}, ...names.map((n) => el('tr', { 'data-metric': n }, el('td', {}, n.replace(/_/g, ' ')),
            ...types.map((t) => el('td', { className: 'n' }, figure(m.values[n][t]))))))));
    });
    $('metrics').replaceChildren(...(blocks.length > 0 ? blocks : [el('p', { className: 'empty' }, 'no metrics recorded yet (run ipp metrics)')]));
    // Plots are only re-fetched when their list changes, so polling does not reload images.
    const key = JSON.stringify(plots);
    if ($('plots').dataset.key !== key) {
      $('plots').dataset.key = key;
      $('plots').replaceChildren(...plots.map((p) => el('figure', {},
        el('img', { src: p.url, alt: p.title, 'data-plot': p.name }), el('figcaption', {}, p.title))));
    }
  }

  // ---- polling
  async function refresh() {
    clearTimeout(state.timer);
    try {
      const config = $('config-filter').value;
      const data = await api('GET', `api/overview${config ? `?config=${encodeURIComponent(config)}` : ''}`);
      state.overview = data;
      state.refreshSeconds = data.refreshSeconds || state.refreshSeconds;
      if (data.writes === 'token') $('token-box').hidden = false;
      renderClients(data.clients);
      renderConfigs(data.configs);
      renderStages(data.stages);
      renderFailed(data.failedBatches, data.failedItems);
      renderLatest(data.latestBatches);
      renderMetrics(data.metrics, data.plots);
      $('status').textContent = `updated ${new Date(data.now).toLocaleTimeString()}${data.writes === 'refused' ? ' · read only' : ''}`;
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    } catch (error) {
      $('status').textContent = `refresh failed: ${error.message}`;
    } finally {
      if ($('live').checked) state.timer = setTimeout(refresh, state.refreshSeconds * 1000);
    }
  }

  $('live').addEventListener('change', () => { if ($('live').checked) refresh(); else clearTimeout(state.timer); });
  $('config-filter').addEventListener('change', refresh);

  api('GET', 'api/fields').then((data) => { state.fields = data.fields; }, (e) => showMessage(`cannot read the config fields: ${e.message}`))
    .finally(refresh);
}());
