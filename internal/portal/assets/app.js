// nimbus portal: a single-page application over the public ARM API.
//
// Every call goes to /portal/api/<ARM path>, the same-origin proxy that adds
// the session's bearer token; the session's CSRF token rides in the
// X-Nimbus-Csrf header. Nothing here talks to anything but ARM.
'use strict';

const PROXY = '/portal/api';
const CSRF_HEADER = 'X-Nimbus-Csrf';
const V = { net: '2024-05-01', compute: '2024-07-01', res: '2021-04-01' };
const S = { csrf: '', sub: '', timers: [], gen: 0 };

// ---- DOM helpers ----------------------------------------------------------

// h builds an element: attrs may hold class, text, on<event> handlers and
// any attribute; children are nodes, strings, arrays or null.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  add(el, kids);
  return el;
}
function add(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}
function replace(el, ...kids) {
  // Keep the height while the content changes so refreshes do not jump.
  const hgt = el.getBoundingClientRect().height;
  if (hgt) el.style.minHeight = hgt + 'px';
  el.replaceChildren();
  add(el, kids);
  requestAnimationFrame(() => { el.style.minHeight = ''; });
}
let uid = 0;
const nextId = (p) => `${p}-${++uid}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- API ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, err) {
    super((err && err.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (err && err.code) || '';
    this.target = (err && err.target) || '';
    this.details = (err && err.details) || [];
  }
}

// call sends one request through the proxy. url is an ARM path (with
// query) or an absolute ARM URL (LRO headers), which is mapped onto the proxy.
async function call(method, url, body) {
  if (/^https?:/.test(url)) { const u = new URL(url); url = u.pathname + u.search; }
  const headers = { [CSRF_HEADER]: S.csrf };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(PROXY + url, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: { message: text } }; }
  if (r.status === 401 && data && data.error && data.error.code === 'NotSignedIn') signedOut();
  if (!r.ok) throw new ApiError(r.status, data && data.error);
  return { status: r.status, data, headers: r.headers };
}
const withVer = (path, ver) => path + (path.includes('?') ? '&' : '?') + 'api-version=' + ver;
const verFor = (id) => /\/providers\/Microsoft\.Compute\//i.test(id) ? V.compute
  : /\/providers\/Microsoft\.Network\//i.test(id) ? V.net : V.res;
const get = async (id, ver) => (await call('GET', withVer(id, ver || verFor(id)))).data;
async function list(path, ver) {
  let out = [], res = await call('GET', withVer(path, ver || verFor(path)));
  for (;;) {
    out = out.concat(res.data.value || []);
    if (!res.data.nextLink) return out;
    res = await call('GET', res.data.nextLink);
  }
}

// send makes a write and follows its long-running operation, reporting
// progress in a notification labelled label. It resolves with the final
// resource body (or null) and rejects with an ApiError.
async function send(method, id, body, label, ver) {
  const n = notify(label, 'Submitting…');
  try {
    const res = await call(method, withVer(id, ver || verFor(id)), body);
    const out = await follow(res, n);
    n.done(true, 'Succeeded');
    return out;
  } catch (e) {
    n.done(false, `Failed: ${e.message}`);
    throw e;
  }
}
async function follow(res, n) {
  const op = res.headers.get('Azure-AsyncOperation');
  const loc = res.headers.get('Location');
  if (res.status !== 201 && res.status !== 202) return res.data;
  if (!op && !loc) return res.data;
  const start = Date.now();
  for (;;) {
    const wait = Number(res.headers.get('Retry-After') || 1);
    await sleep(Math.min(Math.max(wait, 0.5), 5) * 1000);
    if (op) {
      const st = await call('GET', op);
      const status = st.data && st.data.status;
      n.update(`${status} (${Math.round((Date.now() - start) / 1000)} s)`);
      if (status === 'Succeeded') return res.data;
      if (status === 'Failed' || status === 'Canceled') throw new ApiError(400, (st.data && st.data.error) || { message: status });
    } else {
      const st = await call('GET', loc);
      n.update(`Running (${Math.round((Date.now() - start) / 1000)} s)`);
      if (st.status !== 202) return st.data;
    }
  }
}

// ---- notifications --------------------------------------------------------

function notify(title, text) {
  const msg = h('div', { class: 'msg', text });
  const el = h('div', { class: 'note' }, h('strong', { text: title }), msg);
  document.getElementById('notes').append(el);
  return {
    update(t) { msg.textContent = t; },
    done(ok, t) {
      msg.textContent = t;
      el.classList.add(ok ? 'ok' : 'bad');
      el.prepend(h('button', { class: 'close', type: 'button', 'aria-label': 'Dismiss notification', text: '×', onclick: () => el.remove() }));
      setTimeout(() => el.remove(), ok ? 5000 : 15000);
    },
  };
}

// ---- forms ----------------------------------------------------------------

// field returns a labelled control with an error slot. spec: {prop, label,
// type (text|number|select|radio|textarea|file), value, options [[value,
// label]], hint, min, max, required}.
function field(spec) {
  const id = nextId('f');
  const errId = id + '-err';
  const hintId = spec.hint ? id + '-hint' : null;
  const described = [hintId, errId].filter(Boolean).join(' ');
  let ctl;
  if (spec.type === 'radio') {
    ctl = h('fieldset', { 'data-prop': spec.prop, 'aria-describedby': described, id },
      h('legend', { text: spec.label }),
      spec.options.map(([v, l]) => {
        const rid = nextId('r');
        return h('div', { class: 'radio' },
          h('input', { type: 'radio', name: id, id: rid, value: v, checked: String(spec.value) === String(v) }),
          h('label', { for: rid, text: l }));
      }));
    return h('div', { class: 'field radiofield' }, h('span', { class: 'label', 'aria-hidden': 'true' }),
      h('div', { class: 'control' }, ctl,
        hintId && h('p', { class: 'hint', id: hintId, text: spec.hint }),
        h('p', { class: 'err', id: errId, role: 'alert' })));
  }
  if (spec.type === 'select') {
    ctl = h('select', { id, name: spec.prop, 'data-prop': spec.prop, 'aria-describedby': described },
      spec.options.map(([v, l]) => h('option', { value: v, text: l })));
    if (spec.value !== undefined) ctl.value = spec.value;
  } else if (spec.type === 'textarea') {
    ctl = h('textarea', { id, name: spec.prop, 'data-prop': spec.prop, 'aria-describedby': described, spellcheck: 'false', value: spec.value || '' });
  } else if (spec.type === 'file') {
    ctl = h('input', { id, type: 'file', accept: '.json,application/json', 'data-prop': spec.prop, 'aria-describedby': described });
  } else {
    ctl = h('input', { id, type: spec.type || 'text', name: spec.prop, 'data-prop': spec.prop, 'aria-describedby': described,
      value: spec.value === undefined ? '' : spec.value, min: spec.min, max: spec.max, required: spec.required, autocomplete: 'off' });
  }
  return h('div', { class: 'field' }, h('label', { for: id, text: spec.label }),
    h('div', { class: 'control' }, ctl,
      hintId && h('p', { class: 'hint', id: hintId, text: spec.hint }),
      h('p', { class: 'err', id: errId, role: 'alert' })));
}

// val reads the control of prop in form.
function val(form, prop) {
  const el = form.querySelector(`[data-prop="${prop}"]`);
  if (!el) return undefined;
  if (el.tagName === 'FIELDSET') { const c = el.querySelector('input:checked'); return c ? c.value : ''; }
  if (el.type === 'number') return el.value === '' ? undefined : Number(el.value);
  return el.value;
}

function clearErrors(form) {
  form.querySelectorAll('.err, .formerr').forEach((e) => { e.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
}

// Error codes whose field is not the last segment of their target.
const CODE_FIELD = {
  CannotModifyRuleUsedByProbeUsedByVMSS: 'probe',
  CannotRemoveRuleUsedByProbeUsedByVMSS: 'probe',
  LoadBalancingRuleMustDisableSNATSinceSameFrontendIPConfigurationIsReferencedByOutboundRule: 'disableOutboundSnat',
  ProbeRequestPathRequiredForHttpAndHttps: 'requestPath',
  ProbeRequestPathNotAllowedForTcp: 'requestPath',
  SpecifiedAllocatedOutboundPortsForOutboundRuleIsNotAMultipleOfEight: 'allocatedOutboundPorts',
  FrontendPortConflictOnFrontendIPConfiguration: 'frontendPort',
  RulesUseSameBackendPortProtocolAndPool: 'backendPort',
};

// showError puts err next to the field it concerns (by code, else by the
// last property of its target), else at the top of the form.
function showError(form, err, fallbackProp) {
  const msg = err.code ? `${err.message} (Code: ${err.code})` : err.message;
  let prop = CODE_FIELD[err.code];
  if (!prop && err.target) prop = err.target.split('.').pop().replace(/\[.*$/, '');
  let el = prop && form.querySelector(`[data-prop="${prop}"]`);
  if (!el && fallbackProp) el = form.querySelector(`[data-prop="${fallbackProp}"]`);
  if (el) {
    el.setAttribute('aria-invalid', 'true');
    const slot = document.getElementById(el.getAttribute('aria-describedby').split(' ').pop());
    slot.textContent = msg;
    el.focus();
    return;
  }
  const top = form.querySelector('.formerr');
  top.textContent = msg;
  top.focus();
}

// formPanel builds a form: onsubmit(form) returns a promise; errors land
// next to their fields.
function formPanel(title, fields, submitLabel, onsubmit, extra) {
  const form = h('form', { class: 'panel', novalidate: true, 'aria-label': title },
    h('h2', { text: title }),
    h('div', { class: 'formerr', role: 'alert', tabindex: '-1' }),
    fields,
    h('div', { class: 'toolbar' }, h('button', { class: 'primary', type: 'submit', text: submitLabel }), extra));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try { await onsubmit(form); } catch (e) { showError(form, e); } finally { btn.disabled = false; }
  });
  return form;
}
function fieldError(prop, message) { const e = new ApiError(400, { message }); e.target = prop; return e; }

// confirmButton asks inline before a destructive action (no modal dialog).
function confirmButton(label, question, action) {
  const wrap = h('span', { class: 'confirm' });
  const start = h('button', { type: 'button', class: 'danger', text: label, onclick: () => {
    const yes = h('button', { type: 'button', class: 'danger', text: 'Yes, ' + label.toLowerCase() });
    const no = h('button', { type: 'button', text: 'No' });
    yes.addEventListener('click', async () => { yes.disabled = true; try { await action(); } catch (e) { /* shown in the notification */ } });
    no.addEventListener('click', () => replace(wrap, start));
    replace(wrap, h('span', { text: question }), yes, no);
    yes.focus();
  } });
  wrap.append(start);
  return wrap;
}

// ---- ids and names --------------------------------------------------------

const subPath = () => `/subscriptions/${S.sub}`;
const rgPath = (rg) => `${subPath()}/resourceGroups/${encodeURIComponent(rg)}`;
const lastSeg = (id) => (id || '').split('/').pop();
const sameId = (a, b) => (a || '').toLowerCase() === (b || '').toLowerCase();
function parseId(id) {
  const p = id.split('/');
  const out = { rg: '', type: '', name: lastSeg(id) };
  for (let i = 0; i < p.length; i++) {
    if (/^resourcegroups$/i.test(p[i])) out.rg = p[i + 1];
    if (/^providers$/i.test(p[i]) && p[i + 2]) out.type = (p[i + 1] + '/' + p[i + 2]).toLowerCase();
  }
  return out;
}
const TYPE_NAMES = {
  'microsoft.network/loadbalancers': 'Load balancer',
  'microsoft.network/publicipaddresses': 'Public IP address',
  'microsoft.network/virtualnetworks': 'Virtual network',
  'microsoft.network/networksecuritygroups': 'Network security group',
  'microsoft.compute/virtualmachinescalesets': 'Virtual machine scale set',
};
const typeName = (t) => TYPE_NAMES[(t || '').toLowerCase()] || t;
const link = (hash, text) => h('a', { href: '#' + hash, text });
const resLink = (id, text, blade) => link('/r' + id + (blade ? '~' + blade : ''), text || lastSeg(id));
// instanceLabel names the scale-set instance of a NIC ipconfig id ("web_3").
function instanceLabel(ipcId) {
  const m = /virtualMachineScaleSets\/([^/]+)\/virtualMachines\/([^/]+)/i.exec(ipcId || '');
  return m ? `${m[1]}_${m[2]}` : lastSeg(ipcId);
}
const stateCell = (state) => h('td', {}, h('span', { class: `dot state-${state}`, text: state }));
function table(cols, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted', text: empty || 'None.' });
  return h('div', { class: 'tablewrap' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => (c instanceof Node && c.tagName === 'TD') ? c : h('td', {}, c)))))));
}
const props = (pairs) => h('dl', { class: 'props' }, pairs.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v === undefined || v === null || v === '' ? '—' : v)]));

// ---- routing --------------------------------------------------------------

function every(ms, fn) {
  const gen = S.gen;
  const tick = async () => {
    if (gen !== S.gen) return;
    try { await fn(); } catch (e) { /* the next tick retries */ }
    if (gen === S.gen) S.timers.push(setTimeout(tick, ms));
  };
  S.timers.push(setTimeout(tick, ms));
}

async function route() {
  S.gen++;
  S.timers.forEach(clearTimeout);
  S.timers = [];
  const main = document.getElementById('main');
  const hash = decodeURIComponent(location.hash.slice(1)) || '/';
  const gen = S.gen;
  let view;
  try {
    if (hash === '/') view = await homeView();
    else if (hash.startsWith('/rg/')) view = await groupView(hash.slice(4));
    else if (hash.startsWith('/create/')) view = await createView(hash.slice(8));
    else if (hash.startsWith('/r/')) {
      const [id, rest] = hash.slice(2).split('~');
      view = await resourceView(id, (rest || 'overview').split('?')[0]);
    } else view = h('p', { text: 'No such page.' });
  } catch (e) {
    view = h('div', { class: 'formerr', role: 'alert', text: `${e.message}${e.code ? ` (Code: ${e.code})` : ''}` });
  }
  if (gen !== S.gen) return;
  main.replaceChildren(view);
  const h1 = main.querySelector('h1');
  document.title = (h1 ? h1.firstChild.textContent + ' — ' : '') + 'nimbus portal';
}

function crumbs(parts) {
  const nav = document.getElementById('crumbs');
  nav.replaceChildren();
  parts.forEach(([hash, text], i) => {
    if (i) nav.append(' › ');
    nav.append(i === parts.length - 1 ? h('span', { 'aria-current': 'page', text }) : link(hash, text));
  });
}

// ---- resource groups ------------------------------------------------------

async function homeView() {
  crumbs([['/', 'Home'], ['/', 'Resource groups']]);
  const groups = await list(`${subPath()}/resourcegroups`, V.res);
  const form = formPanel('Create a resource group', [
    field({ prop: 'name', label: 'Resource group', required: true }),
    field({ prop: 'location', label: 'Region', value: 'eastus' }),
  ], 'Create', async (f) => {
    const name = val(f, 'name').trim();
    if (!name) throw fieldError('name', 'The value must not be empty.');
    await send('PUT', rgPath(name), { location: val(f, 'location') }, `Creating resource group '${name}'`, V.res);
    location.hash = '#/rg/' + encodeURIComponent(name);
  });
  return h('section', {}, h('h1', { text: 'Resource groups' }),
    table(['Name', 'Location', 'Provisioning state', ''], groups.map((g) => [
      link('/rg/' + encodeURIComponent(g.name), g.name), g.location, g.properties && g.properties.provisioningState,
      confirmButton('Delete', `Delete resource group ${g.name} and everything in it?`, async () => {
        await send('DELETE', rgPath(g.name), undefined, `Deleting resource group '${g.name}'`, V.res);
        route();
      }),
    ]), 'No resource groups yet.'), form);
}

async function groupView(rg) {
  crumbs([['/', 'Home'], ['/', 'Resource groups'], ['/rg/' + rg, rg]]);
  const [resources, deps] = await Promise.all([
    list(`${rgPath(rg)}/resources`, V.res),
    list(`${rgPath(rg)}/providers/Microsoft.Resources/deployments`, V.res).catch(() => []),
  ]);
  const q = '?rg=' + encodeURIComponent(rg);
  return h('section', {}, h('h1', {}, rg, h('small', { text: 'Resource group' })),
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Create' },
      link('/create/loadBalancer' + q, 'Create load balancer'),
      link('/create/scaleSet' + q, 'Create virtual machine scale set'),
      link('/create/publicIP' + q, 'Create public IP address'),
      link('/create/vnet' + q, 'Create virtual network'),
      link('/create/nsg' + q, 'Create network security group'),
      link('/create/deployment' + q, 'Deploy a custom template')),
    h('h2', { text: 'Resources' }),
    table(['Name', 'Type', 'Location', ''], resources.map((r) => [resLink(r.id, r.name), typeName(r.type), r.location,
      confirmButton('Delete', `Delete ${r.name}?`, async () => {
        await send('DELETE', r.id, undefined, `Deleting '${r.name}'`);
        route();
      })]), 'This resource group is empty.'),
    h('h2', { text: 'Deployments' }),
    table(['Deployment name', 'Status', 'Timestamp'], deps.map((d) => [
      link(`/r${d.id}`, d.name), h('span', { class: `state-${d.properties.provisioningState}`, text: d.properties.provisioningState }),
      d.properties.timestamp || '']), 'No deployments.'));
}

// ---- resource blades ------------------------------------------------------

const BLADES = {
  'microsoft.network/loadbalancers': [['overview', 'Overview'], ['frontends', 'Frontend IP configuration'], ['pools', 'Backend pools'],
    ['rules', 'Load balancing rules'], ['probes', 'Health probes'], ['nat', 'Inbound NAT rules'], ['outbound', 'Outbound rules'], ['insights', 'Insights']],
  'microsoft.compute/virtualmachinescalesets': [['overview', 'Overview'], ['instances', 'Instances'], ['scaling', 'Scaling'], ['upgrade', 'Upgrade policy']],
  'microsoft.network/virtualnetworks': [['overview', 'Overview'], ['subnets', 'Subnets']],
  'microsoft.network/networksecuritygroups': [['overview', 'Overview'], ['inbound', 'Inbound security rules'], ['outbound', 'Outbound security rules']],
  'microsoft.network/publicipaddresses': [['overview', 'Overview']],
  'microsoft.resources/deployments': [['overview', 'Overview']],
};

async function resourceView(id, blade) {
  const p = parseId(id);
  crumbs([['/', 'Home'], ['/', 'Resource groups'], ['/rg/' + p.rg, p.rg], ['/r' + id, p.name]]);
  const blades = BLADES[p.type] || [['overview', 'Overview']];
  const r = await get(id);
  const body = h('div', { class: 'content' });
  const fn = VIEWS[p.type + ':' + blade] || genericView;
  add(body, [await fn(r, id)]);
  return h('section', {}, h('h1', {}, r.name, h('small', { text: `${typeName(r.type || p.type)} · ${blades.find((b) => b[0] === blade)?.[1] || blade}` })),
    h('div', { class: 'blade' },
      h('nav', { 'aria-label': 'Resource menu' }, h('ul', { class: 'menu' }, blades.map(([b, label]) => h('li', {},
        h('a', { href: `#/r${id}~${b}`, text: label, 'aria-current': b === blade ? 'page' : null }))))),
      body));
}

function genericView(r) {
  return h('div', {}, props([['Resource group', parseId(r.id).rg], ['Location', r.location], ['Type', r.type],
    ['Provisioning state', r.properties && r.properties.provisioningState]]),
  h('h2', { text: 'JSON view' }), h('pre', { class: 'mono panel', text: JSON.stringify(r, null, 2) }));
}

const VIEWS = {};

// ---- load balancer --------------------------------------------------------

const lbp = (lb) => lb.properties || {};
const feOptions = (lb) => (lbp(lb).frontendIPConfigurations || []).map((f) => [f.id, f.name]);
const poolOptions = (lb) => (lbp(lb).backendAddressPools || []).map((f) => [f.id, f.name]);
const probeOptions = (lb) => [['', 'None']].concat((lbp(lb).probes || []).map((f) => [f.id, `${f.name} (${f.properties.protocol}:${f.properties.port})`]));
const lbChildId = (lb, coll, name) => `${lb.id}/${coll}/${name}`;

async function frontendAddresses(lb) {
  const out = {};
  await Promise.all((lbp(lb).frontendIPConfigurations || []).map(async (f) => {
    const fp = f.properties || {};
    if (fp.publicIPAddress) {
      try { const pip = await get(fp.publicIPAddress.id); out[f.id] = [pip.properties.ipAddress, resLink(pip.id, pip.name)]; } catch (e) { out[f.id] = ['', resLink(fp.publicIPAddress.id)]; }
    } else out[f.id] = [fp.privateIPAddress, fp.subnet ? resLink(fp.subnet.id.replace(/\/subnets\/.*$/i, ''), lastSeg(fp.subnet.id)) : ''];
  }));
  return out;
}

VIEWS['microsoft.network/loadbalancers:overview'] = async (lb) => {
  const addrs = await frontendAddresses(lb);
  const p = lbp(lb);
  const count = (k) => (p[k] || []).length;
  return h('div', {}, props([
    ['Resource group', parseId(lb.id).rg], ['Location', lb.location], ['SKU', lb.sku && lb.sku.name], ['Tier', lb.sku && lb.sku.tier],
    ['Provisioning state', p.provisioningState],
    ['Frontend IP configuration', String(count('frontendIPConfigurations'))], ['Backend pools', String(count('backendAddressPools'))],
    ['Load balancing rules', String(count('loadBalancingRules'))], ['Health probes', String(count('probes'))],
    ['Inbound NAT rules', String(count('inboundNatRules') + count('inboundNatPools'))], ['Outbound rules', String(count('outboundRules'))],
  ]), h('h2', { text: 'Frontend IP addresses' }),
  table(['Name', 'IP address', 'Public IP address / subnet'], (p.frontendIPConfigurations || []).map((f) => [f.name, (addrs[f.id] || [])[0], (addrs[f.id] || [])[1]])));
};

VIEWS['microsoft.network/loadbalancers:frontends'] = async (lb) => {
  const addrs = await frontendAddresses(lb);
  return table(['Name', 'IP address', 'Public IP address / subnet', 'Rules count'], (lbp(lb).frontendIPConfigurations || []).map((f) => {
    const fp = f.properties || {};
    const rules = (fp.loadBalancingRules || []).length + (fp.inboundNatRules || []).length + (fp.outboundRules || []).length + (fp.inboundNatPools || []).length;
    return [f.name, (addrs[f.id] || [])[0], (addrs[f.id] || [])[1], String(rules)];
  }), 'No frontend IP configurations.');
};

// poolHealth asks the rules' health action for their backends' health: a
// map of ipconfig id (lower case) → {ip, states: {ruleName: state}}. A
// rule's answer depends only on its pools and its probe, so rules sharing
// both are asked once.
async function poolHealth(lb) {
  const out = {};
  const groups = new Map();
  for (const r of lbp(lb).loadBalancingRules || []) {
    const p = r.properties;
    const pools = [p.backendAddressPool].concat(p.backendAddressPools || []).filter(Boolean).map((x) => x.id.toLowerCase()).sort();
    const key = pools.join(',') + '|' + (p.probe ? p.probe.id.toLowerCase() : '');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  await Promise.all([...groups.values()].map(async (rules) => {
    const res = await call('POST', withVer(`${rules[0].id}/health`, V.net), {});
    for (const b of (res.data.loadBalancerBackendAddresses || [])) {
      const k = (b.networkInterfaceIPConfigurationId || b.ipAddress).toLowerCase();
      out[k] = out[k] || { ip: b.ipAddress, states: {}, reasons: {} };
      for (const r of rules) {
        out[k].states[r.name] = b.state;
        out[k].reasons[r.name] = b.reason;
      }
    }
  }));
  return out;
}

// Health samples per load balancer for the Insights charts: {t, backends: {ipc: {rule: state}}}.
const HISTORY = {};
const HISTORY_MS = 5 * 60 * 1000;
function record(lb, health) {
  const k = lb.id.toLowerCase();
  const now = Date.now();
  const hist = (HISTORY[k] = (HISTORY[k] || []).filter((s) => now - s.t < HISTORY_MS));
  hist.push({ t: now, health });
}

// memberHealth sums a backend's states over the rules that use its pool:
// Up when every rule sees it up, Down when one sees it down.
function memberHealth(hh, rules) {
  const st = rules.map((r) => hh.states[r.name] || 'Unknown');
  const down = rules.filter((r, i) => st[i] === 'Down');
  const state = !rules.length ? 'Unknown' : down.length ? 'Down' : st.every((x) => x === 'Up') ? 'Up' : 'Unknown';
  const cell = stateCell(state);
  cell.title = rules.map((r) => `${r.name}: ${hh.states[r.name] || 'Unknown'}${hh.reasons[r.name] ? ' (' + hh.reasons[r.name] + ')' : ''}`).join('\n');
  if (down.length) cell.append(h('span', { class: 'hint', text: ` on ${down.map((r) => r.name).join(', ')}` }));
  return cell;
}

function poolTables(lb, health) {
  const rulesOf = (pool) => (lbp(lb).loadBalancingRules || []).filter((r) => r.properties.backendAddressPool && sameId(r.properties.backendAddressPool.id, pool.id)
    || (r.properties.backendAddressPools || []).some((x) => sameId(x.id, pool.id)));
  return (lbp(lb).backendAddressPools || []).map((pool) => {
    const rules = rulesOf(pool);
    const members = (pool.properties.backendIPConfigurations || []).map((m) => m.id);
    return h('section', { 'aria-label': `Backend pool ${pool.name}` }, h('h2', { text: `${pool.name} (${members.length} members)` }),
      h('p', { class: 'hint', text: rules.length ? `Health from the rules ${rules.map((r) => r.name).join(', ')}.` : 'No load balancing rule uses this pool: health is unknown.' }),
      table(['Instance', 'IP address', 'Network interface IP configuration', 'Health'],
        members.map((id) => {
          const hh = health[id.toLowerCase()] || { states: {}, reasons: {} };
          return [instanceLabel(id), hh.ip || '', h('span', { class: 'mono', text: id.split('/').slice(-4).join('/') }), memberHealth(hh, rules)];
        }), 'No members.'));
  });
}

VIEWS['microsoft.network/loadbalancers:pools'] = async (lb, id) => {
  const live = h('div', { class: 'live', 'data-live': 'pools' });
  const refresh = async () => {
    const cur = await get(id);
    const health = await poolHealth(cur);
    record(cur, health);
    replace(live, poolTables(cur, health), h('p', { class: 'hint', text: `Health from each load balancing rule's health action; refreshed every 2 seconds. Last: ${new Date().toLocaleTimeString()}` }));
  };
  await refresh();
  every(2000, refresh);
  return h('div', {}, live, poolForm(lb));
};

function poolForm(lb) {
  return formPanel('Add a backend pool', [field({ prop: 'name', label: 'Name' })], 'Save', async (f) => {
    const name = val(f, 'name').trim();
    if (!name) throw fieldError('name', 'The value must not be empty.');
    await updateLB(lb.id, (cur) => { lbp(cur).backendAddressPools = (lbp(cur).backendAddressPools || []).concat([{ name, properties: {} }]); }, `Adding backend pool '${name}'`);
    route();
  });
}

// updateLB reads the load balancer, lets change edit it and PUTs it back,
// as Azure portal saves a child: the whole load balancer.
async function updateLB(id, change, label) {
  const cur = await get(id);
  change(cur);
  delete cur.etag;
  return send('PUT', id, cur, label);
}

const SESSION = [['Default', 'None'], ['SourceIP', 'Client IP'], ['SourceIPProtocol', 'Client IP and protocol']];
const ENABLED = [['true', 'Enabled'], ['false', 'Disabled']];
const SNAT = [
  ['true', '(Recommended) Use outbound rules to provide backend pool members access to the internet.'],
  ['false', 'Use implicit outbound rule. This is not recommended because it can cause SNAT port exhaustion.'],
];

function ruleForm(lb, rule) {
  const rp = (rule && rule.properties) || {};
  const editing = !!rule;
  return formPanel(editing ? `Edit load balancing rule ${rule.name}` : 'Add load balancing rule', [
    field({ prop: 'name', label: 'Name', value: editing ? rule.name : '' }),
    field({ prop: 'frontendIPConfiguration', label: 'Frontend IP address', type: 'select', options: feOptions(lb), value: rp.frontendIPConfiguration && rp.frontendIPConfiguration.id }),
    field({ prop: 'backendAddressPool', label: 'Backend pool', type: 'select', options: poolOptions(lb), value: rp.backendAddressPool && rp.backendAddressPool.id }),
    field({ prop: 'protocol', label: 'Protocol', type: 'select', options: [['Tcp', 'TCP'], ['Udp', 'UDP'], ['All', 'All (HA ports)']], value: rp.protocol || 'Tcp' }),
    field({ prop: 'frontendPort', label: 'Port', type: 'number', min: 0, max: 65534, value: rp.frontendPort ?? 80 }),
    field({ prop: 'backendPort', label: 'Backend port', type: 'number', min: 0, max: 65535, value: rp.backendPort ?? 80 }),
    field({ prop: 'probe', label: 'Health probe', type: 'select', options: probeOptions(lb), value: rp.probe ? rp.probe.id : '' }),
    field({ prop: 'loadDistribution', label: 'Session persistence', type: 'select', options: SESSION, value: rp.loadDistribution || 'Default' }),
    field({ prop: 'idleTimeoutInMinutes', label: 'Idle timeout (minutes)', type: 'number', min: 4, max: 100, value: rp.idleTimeoutInMinutes ?? 4 }),
    field({ prop: 'enableTcpReset', label: 'TCP reset', type: 'select', options: ENABLED, value: String(!!rp.enableTcpReset) }),
    field({ prop: 'enableFloatingIP', label: 'Floating IP', type: 'select', options: ENABLED, value: String(!!rp.enableFloatingIP) }),
    field({ prop: 'disableOutboundSnat', label: 'Outbound source network address translation (SNAT)', type: 'radio', options: SNAT, value: String(editing ? !!rp.disableOutboundSnat : true) }),
  ], 'Save', async (f) => {
    const name = val(f, 'name').trim();
    if (!name) throw fieldError('name', 'The value must not be empty.');
    const probe = val(f, 'probe');
    const body = { name, properties: {
      frontendIPConfiguration: { id: val(f, 'frontendIPConfiguration') }, backendAddressPool: { id: val(f, 'backendAddressPool') },
      protocol: val(f, 'protocol'), frontendPort: val(f, 'frontendPort'), backendPort: val(f, 'backendPort'),
      probe: probe ? { id: probe } : undefined, loadDistribution: val(f, 'loadDistribution'),
      idleTimeoutInMinutes: val(f, 'idleTimeoutInMinutes'), enableTcpReset: val(f, 'enableTcpReset') === 'true',
      enableFloatingIP: val(f, 'enableFloatingIP') === 'true', disableOutboundSnat: val(f, 'disableOutboundSnat') === 'true',
    } };
    await updateLB(lb.id, (cur) => {
      const rules = lbp(cur).loadBalancingRules = lbp(cur).loadBalancingRules || [];
      const i = rules.findIndex((r) => sameId(r.name, editing ? rule.name : name));
      if (i >= 0) { body.properties = Object.assign({}, rules[i].properties, body.properties); if (!probe) delete body.properties.probe; rules[i] = body; } else rules.push(body);
    }, `Saving load balancing rule '${name}'`);
    location.hash = `#/r${lb.id}~rules`;
    route();
  }, editing ? h('a', { class: 'button', href: `#/r${lb.id}~rules`, text: 'Cancel' }) : null);
}

VIEWS['microsoft.network/loadbalancers:rules'] = async (lb) => {
  const rules = lbp(lb).loadBalancingRules || [];
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const editing = rules.find((r) => r.name === params.get('edit'));
  const editLink = (r) => h('a', { class: 'button', href: `#/r${lb.id}~rules?edit=${encodeURIComponent(r.name)}`, text: 'Edit', 'aria-label': `Edit ${r.name}` });
  return h('div', {}, table(['Name', 'Frontend IP address', 'Protocol', 'Port', 'Backend port', 'Backend pool', 'Health probe', 'Session persistence', 'Outbound SNAT', ''],
    rules.map((r) => {
      const p = r.properties;
      return [r.name, lastSeg(p.frontendIPConfiguration && p.frontendIPConfiguration.id), p.protocol, String(p.frontendPort), String(p.backendPort),
        lastSeg(p.backendAddressPool && p.backendAddressPool.id), p.probe ? lastSeg(p.probe.id) : 'None',
        (SESSION.find((s) => s[0] === (p.loadDistribution || 'Default')) || [0, p.loadDistribution])[1],
        p.disableOutboundSnat ? 'Outbound rules' : 'Implicit', h('span', {}, editLink(r), ' ',
          confirmButton('Delete', `Delete rule ${r.name}?`, async () => {
            await updateLB(lb.id, (cur) => { lbp(cur).loadBalancingRules = lbp(cur).loadBalancingRules.filter((x) => !sameId(x.name, r.name)); }, `Deleting rule '${r.name}'`);
            route();
          }))];
    }), 'No load balancing rules.'), ruleForm(lb, editing));
};

VIEWS['microsoft.network/loadbalancers:probes'] = async (lb) => {
  const probes = lbp(lb).probes || [];
  return h('div', {}, table(['Name', 'Protocol', 'Port', 'Path', 'Interval (seconds)', 'Used by'], probes.map((p) => [p.name, p.properties.protocol,
    String(p.properties.port), p.properties.requestPath || '', String(p.properties.intervalInSeconds ?? 5),
    (p.properties.loadBalancingRules || []).map((r) => lastSeg(r.id)).join(', ')]), 'No health probes.'),
  formPanel('Add health probe', [
    field({ prop: 'name', label: 'Name' }),
    field({ prop: 'protocol', label: 'Protocol', type: 'select', options: [['Tcp', 'TCP'], ['Http', 'HTTP'], ['Https', 'HTTPS']], value: 'Tcp' }),
    field({ prop: 'port', label: 'Port', type: 'number', min: 1, max: 65535, value: 80 }),
    field({ prop: 'requestPath', label: 'Path', hint: 'HTTP and HTTPS probes only, e.g. /' }),
    field({ prop: 'intervalInSeconds', label: 'Interval (seconds)', type: 'number', min: 5, value: 5 }),
  ], 'Save', async (f) => {
    const name = val(f, 'name').trim();
    if (!name) throw fieldError('name', 'The value must not be empty.');
    const body = { name, properties: { protocol: val(f, 'protocol'), port: val(f, 'port'), intervalInSeconds: val(f, 'intervalInSeconds'), numberOfProbes: 1 } };
    if (val(f, 'requestPath')) body.properties.requestPath = val(f, 'requestPath');
    await updateLB(lb.id, (cur) => { lbp(cur).probes = (lbp(cur).probes || []).concat([body]); }, `Adding health probe '${name}'`);
    route();
  }));
};

VIEWS['microsoft.network/loadbalancers:nat'] = async (lb) => {
  const p = lbp(lb);
  const rules = p.inboundNatRules || [];
  // NAT rules v2 (on a backend pool): the port → instance map comes from queryInboundNatRulePortMapping.
  const v2 = rules.filter((r) => r.properties.backendAddressPool);
  const mappings = [];
  for (const pool of (p.backendAddressPools || []).filter((bp) => v2.some((r) => sameId(r.properties.backendAddressPool.id, bp.id)))) {
    for (const m of (pool.properties.backendIPConfigurations || [])) {
      try {
        const res = await call('POST', withVer(`${pool.id}/queryInboundNatRulePortMapping`, V.net), { ipConfiguration: { id: m.id } });
        for (const x of res.data.inboundNatRulePortMappings || []) mappings.push([x.inboundNatRuleName, x.protocol, String(x.frontendPort), String(x.backendPort), instanceLabel(m.id)]);
      } catch (e) { /* a member without mapping */ }
    }
  }
  // NAT rules v1 and the rules NAT pools create: each names its instance.
  const v1 = rules.filter((r) => !r.properties.backendAddressPool).map((r) => [r.name, r.properties.protocol, String(r.properties.frontendPort), String(r.properties.backendPort),
    r.properties.backendIPConfiguration ? instanceLabel(r.properties.backendIPConfiguration.id) : '—']);
  return h('div', {},
    h('h2', { text: 'Inbound NAT rules' }),
    table(['Name', 'Protocol', 'Frontend port', 'Backend port', 'Target'], v1.concat(mappings), 'No inbound NAT rules.'),
    h('h2', { text: 'Inbound NAT pools' }),
    table(['Name', 'Protocol', 'Frontend port range', 'Backend port', 'Frontend IP address'], (p.inboundNatPools || []).map((np) => [np.name, np.properties.protocol,
      `${np.properties.frontendPortRangeStart}-${np.properties.frontendPortRangeEnd}`, String(np.properties.backendPort), lastSeg(np.properties.frontendIPConfiguration.id)]), 'No inbound NAT pools.'),
    h('h2', { text: 'Port mapping (frontend port → instance)' }),
    table(['Rule', 'Protocol', 'Frontend port', 'Backend port', 'Instance'], v1.filter((r) => r[4] !== '—').concat(mappings), 'No ports are mapped to instances.'));
};

VIEWS['microsoft.network/loadbalancers:outbound'] = async (lb) => {
  const rules = lbp(lb).outboundRules || [];
  return h('div', {}, table(['Name', 'Frontend IP addresses', 'Backend pool', 'Protocol', 'Ports per instance', 'Idle timeout (minutes)', 'TCP reset'], rules.map((r) => {
    const p = r.properties;
    return [r.name, (p.frontendIPConfigurations || []).map((f) => lastSeg(f.id)).join(', '), lastSeg(p.backendAddressPool && p.backendAddressPool.id), p.protocol,
      String(p.allocatedOutboundPorts ?? ''), String(p.idleTimeoutInMinutes ?? 4), p.enableTcpReset ? 'Enabled' : 'Disabled'];
  }), 'No outbound rules.'),
  formPanel('Add outbound rule', [
    field({ prop: 'name', label: 'Name' }),
    field({ prop: 'frontendIPConfigurations', label: 'Frontend IP address', type: 'select', options: feOptions(lb) }),
    field({ prop: 'backendAddressPool', label: 'Backend pool', type: 'select', options: poolOptions(lb) }),
    field({ prop: 'protocol', label: 'Protocol', type: 'select', options: [['All', 'All'], ['Tcp', 'TCP'], ['Udp', 'UDP']] }),
    field({ prop: 'allocatedOutboundPorts', label: 'Ports per instance', type: 'number', min: 8, value: 1024, hint: 'A multiple of 8.' }),
    field({ prop: 'idleTimeoutInMinutes', label: 'Idle timeout (minutes)', type: 'number', min: 4, max: 120, value: 4 }),
  ], 'Save', async (f) => {
    const name = val(f, 'name').trim();
    if (!name) throw fieldError('name', 'The value must not be empty.');
    const body = { name, properties: { frontendIPConfigurations: [{ id: val(f, 'frontendIPConfigurations') }], backendAddressPool: { id: val(f, 'backendAddressPool') },
      protocol: val(f, 'protocol'), allocatedOutboundPorts: val(f, 'allocatedOutboundPorts'), idleTimeoutInMinutes: val(f, 'idleTimeoutInMinutes') } };
    await updateLB(lb.id, (cur) => { lbp(cur).outboundRules = (lbp(cur).outboundRules || []).concat([body]); }, `Adding outbound rule '${name}'`);
    route();
  }));
};

// ---- charts ---------------------------------------------------------------

const COLORS = ['#0078d4', '#8764b8', '#00b7c3', '#ca5010', '#498205', '#e3008c', '#986f0b', '#4f6bed'];

// lineChart draws series [{label, points: [[t, v]]}] over the last
// HISTORY_MS, v in [0, max].
function lineChart(title, series, max, unit) {
  const W = 640, H = 160, L = 36, B = 20, now = Date.now(), t0 = now - HISTORY_MS;
  const x = (t) => L + (W - L - 8) * (t - t0) / HISTORY_MS;
  const y = (v) => 8 + (H - B - 8) * (1 - v / max);
  const ns = 'http://www.w3.org/2000/svg';
  const s = (tag, a, ...k) => { const e = document.createElementNS(ns, tag); for (const [n, v] of Object.entries(a)) e.setAttribute(n, v); k.forEach((c) => e.append(c)); return e; };
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: ${series.map((se) => `${se.label} ${se.points.length ? se.points[se.points.length - 1][1] : 0}${unit}`).join(', ')}` });
  for (const v of [0, max / 2, max]) {
    svg.append(s('line', { x1: L, x2: W - 8, y1: y(v), y2: y(v), stroke: '#edebe9' }), s('text', { x: 2, y: y(v) + 4 }, `${v}${unit}`));
  }
  svg.append(s('text', { x: L, y: H - 4 }, '5 min ago'), s('text', { x: W - 40, y: H - 4 }, 'now'));
  series.forEach((se, i) => {
    if (!se.points.length) return;
    const d = se.points.map(([t, v], j) => `${j ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    svg.append(s('path', { d, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2 }));
  });
  return h('figure', { class: 'chart' }, h('figcaption', { text: title }), svg,
    h('div', { class: 'legend' }, series.map((se, i) => h('span', { style: `--c:${COLORS[i % COLORS.length]}`, text: se.label }))));
}

VIEWS['microsoft.network/loadbalancers:insights'] = async (lb, id) => {
  const live = h('div', { class: 'live' });
  const draw = (cur) => {
    const hist = HISTORY[cur.id.toLowerCase()] || [];
    const rules = lbp(cur).loadBalancingRules || [];
    // Health probe status per rule: the share of its backends that are up.
    const perRule = rules.map((r) => ({ label: r.name, points: hist.map((smp) => {
      const states = Object.values(smp.health).map((b) => b.states[r.name]).filter(Boolean);
      return [smp.t, states.length ? Math.round(100 * states.filter((x) => x === 'Up').length / states.length) : 0];
    }) }));
    // Per backend instance: 100 while every rule sees it up.
    const backends = [...new Set(hist.flatMap((smp) => Object.keys(smp.health)))].sort();
    const perBackend = backends.map((k) => ({ label: instanceLabel(k), points: hist.filter((smp) => smp.health[k]).map((smp) => {
      const st = Object.values(smp.health[k].states);
      return [smp.t, st.length && st.every((x) => x === 'Up') ? 100 : 0];
    }) }));
    replace(live, lineChart('Health probe status (% of backends up, per rule)', perRule, 100, '%'),
      lineChart('Health per backend instance (100 = up on every rule)', perBackend, 100, '%'),
      h('p', { class: 'hint', text: `Sampled every 2 seconds from the rules' health action while a load balancer blade is open; ${hist.length} samples over the last 5 minutes.` }));
  };
  const refresh = async () => { const cur = await get(id); record(cur, await poolHealth(cur)); draw(cur); };
  await refresh();
  every(2000, refresh);
  return live;
};

// ---- scale sets -----------------------------------------------------------

const vp = (v) => v.properties || {};
const ipConfigs = (v) => ((vp(v).virtualMachineProfile || {}).networkProfile || {}).networkInterfaceConfigurations || [];
function vmssLBs(v) {
  const ids = new Set();
  for (const nic of ipConfigs(v)) for (const ipc of nic.properties.ipConfigurations || []) {
    for (const r of (ipc.properties.loadBalancerBackendAddressPools || []).concat(ipc.properties.loadBalancerInboundNatPools || [])) ids.add(r.id.replace(/\/(backendAddressPools|inboundNatPools)\/.*$/i, '').toLowerCase());
  }
  return [...ids];
}
const powerState = (vm) => {
  const s = ((vm.properties.instanceView || {}).statuses || []).find((x) => x.code.startsWith('PowerState/'));
  return s ? s.displayStatus || s.code.slice(11) : 'Unknown';
};
const healthState = (vm) => {
  const hv = (vm.properties.instanceView || {}).vmHealth;
  return hv ? hv.status.code.replace('HealthState/', '') : 'unknown';
};

// natPorts maps instance id → ["rule: port", …] from the scale set's load balancers.
async function natPorts(v) {
  const out = {};
  const put = (ipcId, s) => { const m = /virtualMachines\/([^/]+)\//i.exec(ipcId); if (m) (out[m[1]] = out[m[1]] || []).push(s); };
  for (const lbId of vmssLBs(v)) {
    let lb;
    try { lb = await get(lbId, V.net); } catch (e) { continue; }
    for (const r of lbp(lb).inboundNatRules || []) {
      const b = r.properties.backendIPConfiguration;
      if (b && b.id.toLowerCase().startsWith(v.id.toLowerCase() + '/')) put(b.id, `${r.properties.frontendPort}→${r.properties.backendPort}`);
    }
  }
  return out;
}

VIEWS['microsoft.compute/virtualmachinescalesets:overview'] = async (v) => {
  const p = vp(v);
  const lbs = vmssLBs(v);
  const probe = ((p.virtualMachineProfile || {}).networkProfile || {}).healthProbe;
  const img = ((p.virtualMachineProfile || {}).storageProfile || {}).imageReference || {};
  const rep = p.automaticRepairsPolicy || {};
  return props([['Resource group', parseId(v.id).rg], ['Location', v.location], ['Size', v.sku && v.sku.name], ['Capacity', String(v.sku && v.sku.capacity)],
    ['Image', [img.publisher, img.offer, img.sku, img.version].filter(Boolean).join(':')], ['Upgrade policy', (p.upgradePolicy || {}).mode],
    ['Load balancer', lbs.length ? lbs.map((id) => resLink(id)) : 'None'], ['Health probe', probe ? lastSeg(probe.id) : 'None'],
    ['Automatic repairs', rep.enabled ? `Enabled (grace period ${rep.gracePeriod || 'PT10M'})` : 'Disabled'], ['Provisioning state', p.provisioningState]]);
};

function instancesTable(v, vms, nat, selected) {
  return table(['', 'Name', 'Computer name', 'Status', 'Health state', 'Provisioning state', 'Latest model', 'Protection policy', 'NAT ports'], vms.map((vm) => {
    const p = vm.properties;
    const pp = p.protectionPolicy || {};
    const cb = h('input', { type: 'checkbox', 'aria-label': `Select ${vm.name}`, value: vm.instanceId, checked: selected.has(vm.instanceId),
      onchange: (e) => { if (e.target.checked) selected.add(vm.instanceId); else selected.delete(vm.instanceId); } });
    return [cb, vm.name, (p.osProfile || {}).computerName, powerState(vm), stateCell(healthState(vm)), p.provisioningState,
      p.latestModelApplied ? 'Yes' : 'No', pp.protectFromScaleSetActions ? 'Protect from scale set actions' : pp.protectFromScaleIn ? 'Protect from scale-in' : 'None',
      (nat[vm.instanceId] || []).join(', ')];
  }), 'No instances.');
}

VIEWS['microsoft.compute/virtualmachinescalesets:instances'] = async (v, id) => {
  const selected = new Set();
  const live = h('div', { class: 'live', 'data-live': 'instances' });
  const activity = h('div', { class: 'live' });
  const refresh = async () => {
    const [cur, vms] = await Promise.all([get(id), list(`${id}/virtualMachines?$expand=instanceView`, V.compute)]);
    const nat = await natPorts(cur);
    replace(live, instancesTable(cur, vms, nat, selected),
      h('p', { class: 'hint', text: `${vms.length} instances; refreshed every 2 seconds. Last: ${new Date().toLocaleTimeString()}` }));
    const busy = vms.filter((vm) => vm.properties.provisioningState !== 'Succeeded');
    const old = vms.filter((vm) => !vm.properties.latestModelApplied);
    const unhealthy = vms.filter((vm) => healthState(vm) === 'unhealthy');
    replace(activity, props([['Upgrade policy', (vp(cur).upgradePolicy || {}).mode], ['Instances being updated', busy.map((x) => `${x.name} (${x.properties.provisioningState})`).join(', ') || 'None'],
      ['Instances not on the latest model', old.map((x) => x.name).join(', ') || 'None'],
      ['Unhealthy instances (candidates for repair)', unhealthy.map((x) => x.name).join(', ') || 'None'],
      ['Automatic repairs', (vp(cur).automaticRepairsPolicy || {}).enabled ? 'Enabled' : 'Disabled']]));
  };
  const act = (name, label) => h('button', { type: 'button', text: label, onclick: async () => {
    const ids = [...selected];
    if (!ids.length) { note.textContent = 'Select one or more instances first.'; return; }
    note.textContent = '';
    try { await send('POST', `${id}/${name}`, { instanceIds: ids }, `${label}: ${ids.map((i) => `${v.name}_${i}`).join(', ')}`); } catch (e) { note.textContent = e.message; }
    if (name === 'delete') selected.clear();
    refresh();
  } });
  const note = h('p', { class: 'err', role: 'alert' });
  await refresh();
  every(2000, refresh);
  return h('div', {}, h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Instance actions' },
    act('start', 'Start'), act('restart', 'Restart'), act('powerOff', 'Stop'), act('reimage', 'Reimage'), act('manualUpgrade', 'Upgrade'), act('delete', 'Delete')), note,
  live, h('h2', { text: 'Upgrade and repair activity' }), activity);
};

VIEWS['microsoft.compute/virtualmachinescalesets:scaling'] = async (v, id) => {
  const cap = (v.sku && v.sku.capacity) || 0;
  const fid = nextId('cap');
  const out = h('output', { for: fid, text: String(cap) });
  const slider = h('input', { id: fid, type: 'range', min: 0, max: Math.max(20, cap * 2), value: cap, 'data-prop': 'capacity', 'aria-describedby': fid + '-err',
    oninput: (e) => { out.textContent = e.target.value; } });
  const form = h('form', { class: 'panel', 'aria-label': 'Scaling' }, h('h2', { text: 'Manual scale' }), h('div', { class: 'formerr', role: 'alert', tabindex: '-1' }),
    h('div', { class: 'field' }, h('label', { for: fid, text: 'Instance count' }), h('div', { class: 'control' }, h('div', { class: 'slider' }, slider, out), h('p', { class: 'err', id: fid + '-err', role: 'alert' }))),
    h('div', { class: 'toolbar' }, h('button', { class: 'primary', type: 'submit', text: 'Save' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const n = Number(slider.value);
    try {
      await send('PATCH', id, { sku: { capacity: n } }, `Scaling '${v.name}' to ${n} instances`);
      location.hash = `#/r${id}~instances`;
    } catch (e) { showError(form, e, 'capacity'); }
  });
  return form;
};

VIEWS['microsoft.compute/virtualmachinescalesets:upgrade'] = async (v, id) => formPanel('Upgrade policy', [
  field({ prop: 'mode', label: 'Upgrade mode', type: 'select', value: (vp(v).upgradePolicy || {}).mode || 'Manual',
    options: [['Automatic', 'Automatic - Instances will be upgraded immediately in random order'], ['Manual', 'Manual - Existing instances must be manually upgraded'], ['Rolling', 'Rolling - Upgrades roll out in batches with optional pause']] }),
], 'Save', async (f) => {
  await send('PATCH', id, { properties: { upgradePolicy: { mode: val(f, 'mode') } } }, `Updating upgrade policy of '${v.name}'`);
  route();
});

// ---- networks, public IPs, NSGs --------------------------------------------

VIEWS['microsoft.network/publicipaddresses:overview'] = async (pip) => {
  const p = pip.properties || {};
  return props([['Resource group', parseId(pip.id).rg], ['Location', pip.location], ['SKU', pip.sku && pip.sku.name], ['IP address', p.ipAddress],
    ['IP address assignment', p.publicIPAllocationMethod], ['Idle timeout (minutes)', String(p.idleTimeoutInMinutes ?? 4)],
    ['Associated to', p.ipConfiguration ? p.ipConfiguration.id.split('/').slice(-3, -2)[0] + ' / ' + lastSeg(p.ipConfiguration.id) : ''],
    ['Provisioning state', p.provisioningState]]);
};

VIEWS['microsoft.network/virtualnetworks:overview'] = async (vn) => {
  const p = vn.properties || {};
  return props([['Resource group', parseId(vn.id).rg], ['Location', vn.location], ['Address space', ((p.addressSpace || {}).addressPrefixes || []).join(', ')],
    ['Subnets', String((p.subnets || []).length)], ['Provisioning state', p.provisioningState]]);
};
VIEWS['microsoft.network/virtualnetworks:subnets'] = async (vn) => h('div', {},
  table(['Name', 'Address range', 'Network security group', 'Provisioning state'], ((vn.properties || {}).subnets || []).map((s) => [s.name, s.properties.addressPrefix || (s.properties.addressPrefixes || []).join(', '),
    s.properties.networkSecurityGroup ? resLink(s.properties.networkSecurityGroup.id) : 'None', s.properties.provisioningState]), 'No subnets.'),
  formPanel('Add a subnet', [field({ prop: 'name', label: 'Name' }), field({ prop: 'addressPrefix', label: 'Subnet address range', value: '10.0.1.0/24' })], 'Save', async (f) => {
    const name = val(f, 'name').trim();
    if (!name) throw fieldError('name', 'The value must not be empty.');
    await send('PUT', `${vn.id}/subnets/${encodeURIComponent(name)}`, { properties: { addressPrefix: val(f, 'addressPrefix') } }, `Adding subnet '${name}'`);
    route();
  }));

VIEWS['microsoft.network/networksecuritygroups:overview'] = async (nsg) => {
  const p = nsg.properties || {};
  return props([['Resource group', parseId(nsg.id).rg], ['Location', nsg.location], ['Security rules', String((p.securityRules || []).length)],
    ['Subnets', (p.subnets || []).map((s) => lastSeg(s.id)).join(', ')], ['Provisioning state', p.provisioningState]]);
};
function nsgRules(direction) {
  return async (nsg) => {
    const p = nsg.properties || {};
    const rules = (p.securityRules || []).concat(p.defaultSecurityRules || []).filter((r) => r.properties.direction === direction)
      .sort((a, b) => a.properties.priority - b.properties.priority);
    const port = (r) => r.properties.destinationPortRange || (r.properties.destinationPortRanges || []).join(', ');
    const src = (r) => r.properties.sourceAddressPrefix || (r.properties.sourceAddressPrefixes || []).join(', ');
    const dst = (r) => r.properties.destinationAddressPrefix || (r.properties.destinationAddressPrefixes || []).join(', ');
    return h('div', {}, table(['Priority', 'Name', 'Port', 'Protocol', 'Source', 'Destination', 'Action'], rules.map((r) => [String(r.properties.priority), r.name, port(r),
      r.properties.protocol === '*' ? 'Any' : r.properties.protocol, src(r), dst(r), r.properties.access])),
    formPanel(`Add ${direction.toLowerCase()} security rule`, [
      field({ prop: 'name', label: 'Name' }), field({ prop: 'priority', label: 'Priority', type: 'number', min: 100, max: 4096, value: 100 }),
      field({ prop: 'sourceAddressPrefix', label: 'Source', value: '*' }), field({ prop: 'destinationAddressPrefix', label: 'Destination', value: '*' }),
      field({ prop: 'destinationPortRange', label: 'Destination port ranges', value: '80' }),
      field({ prop: 'protocol', label: 'Protocol', type: 'select', options: [['*', 'Any'], ['Tcp', 'TCP'], ['Udp', 'UDP'], ['Icmp', 'ICMP']], value: 'Tcp' }),
      field({ prop: 'access', label: 'Action', type: 'radio', options: [['Allow', 'Allow'], ['Deny', 'Deny']], value: 'Allow' }),
    ], 'Add', async (f) => {
      const name = val(f, 'name').trim();
      if (!name) throw fieldError('name', 'The value must not be empty.');
      const cur = await get(nsg.id);
      delete cur.etag;
      cur.properties.securityRules = (cur.properties.securityRules || []).concat([{ name, properties: { priority: val(f, 'priority'), direction, access: val(f, 'access'),
        protocol: val(f, 'protocol'), sourceAddressPrefix: val(f, 'sourceAddressPrefix'), sourcePortRange: '*',
        destinationAddressPrefix: val(f, 'destinationAddressPrefix'), destinationPortRange: val(f, 'destinationPortRange') } }]);
      await send('PUT', nsg.id, cur, `Adding security rule '${name}'`);
      route();
    }));
  };
}
VIEWS['microsoft.network/networksecuritygroups:inbound'] = nsgRules('Inbound');
VIEWS['microsoft.network/networksecuritygroups:outbound'] = nsgRules('Outbound');

// ---- deployments ----------------------------------------------------------

VIEWS['microsoft.resources/deployments:overview'] = async (d, id) => {
  const live = h('div', { class: 'live', 'data-live': 'deployment' });
  const refresh = async () => {
    const [cur, ops] = await Promise.all([get(id, V.res), list(`${id}/operations`, V.res).catch(() => [])]);
    const p = cur.properties || {};
    replace(live, props([['Deployment name', cur.name], ['Status', h('span', { class: `state-${p.provisioningState}`, text: p.provisioningState })], ['Start time', p.timestamp],
      ['Duration', p.duration], ['Error', p.error ? `${p.error.message} (Code: ${p.error.code})` : '']]),
    h('h2', { text: 'Deployment details' }),
    table(['Resource', 'Type', 'Status', 'Operation details'], ops.filter((o) => o.properties.targetResource).map((o) => {
      const op = o.properties;
      const msg = op.statusMessage && (op.statusMessage.error || op.statusMessage);
      return [op.targetResource.id ? resLink(op.targetResource.id, op.targetResource.resourceName) : op.targetResource.resourceName, op.targetResource.resourceType,
        h('span', { class: `state-${op.provisioningState}`, text: op.provisioningState }), msg && msg.message ? `${msg.message} (Code: ${msg.code})` : (op.statusCode || '')];
    }), 'No operations yet.'));
    return p.provisioningState;
  };
  await refresh();
  every(1500, refresh);
  return live;
};

// ---- create forms ---------------------------------------------------------

async function createView(what) {
  const [kind, qs] = what.split('?');
  const rg = new URLSearchParams(qs || '').get('rg') || '';
  const f = CREATE[kind];
  if (!f) return h('p', { text: 'Nothing to create here.' });
  crumbs([['/', 'Home'], ['/', 'Resource groups'], ['/rg/' + rg, rg], [location.hash.slice(1), f.title]]);
  return h('section', {}, h('h1', {}, f.title, h('small', { text: `in resource group ${rg}` })), await f.form(rg));
}

const required = (f, prop) => { const v = (val(f, prop) || '').trim(); if (!v) throw fieldError(prop, 'The value must not be empty.'); return v; };
const netId = (rg, type, name) => `${rgPath(rg)}/providers/Microsoft.Network/${type}/${encodeURIComponent(name)}`;

const CREATE = {
  loadBalancer: { title: 'Create load balancer', form: async (rg) => {
    const pips = (await list(`${rgPath(rg)}/providers/Microsoft.Network/publicIPAddresses`, V.net)).filter((p) => !(p.properties || {}).ipConfiguration);
    return formPanel('Basics', [
      field({ prop: 'name', label: 'Name' }), field({ prop: 'location', label: 'Region', value: 'eastus' }),
      field({ prop: 'sku', label: 'SKU', type: 'select', options: [['Standard', 'Standard']], value: 'Standard' }),
      field({ prop: 'frontend', label: 'Frontend IP configuration name', value: 'LoadBalancerFrontEnd' }),
      field({ prop: 'publicIP', label: 'Public IP address', type: 'select', options: [['', 'Create new']].concat(pips.map((p) => [p.id, p.name])) }),
      field({ prop: 'newPublicIP', label: 'New public IP address name', hint: 'Used when "Create new" is selected; default <name>-pip.' }),
      field({ prop: 'pool', label: 'Backend pool name', value: 'backendpool' }),
    ], 'Create', async (f) => {
      const name = required(f, 'name');
      const loc = val(f, 'location');
      let pipId = val(f, 'publicIP');
      if (!pipId) {
        const pname = (val(f, 'newPublicIP') || '').trim() || `${name}-pip`;
        pipId = netId(rg, 'publicIPAddresses', pname);
        await send('PUT', pipId, { location: loc, sku: { name: 'Standard' }, properties: { publicIPAllocationMethod: 'Static' } }, `Creating public IP address '${pname}'`);
      }
      await send('PUT', netId(rg, 'loadBalancers', name), { location: loc, sku: { name: val(f, 'sku') }, properties: {
        frontendIPConfigurations: [{ name: required(f, 'frontend'), properties: { publicIPAddress: { id: pipId } } }],
        backendAddressPools: [{ name: required(f, 'pool') }] } }, `Creating load balancer '${name}'`);
      location.hash = `#/r${netId(rg, 'loadBalancers', name)}~overview`;
    });
  } },
  scaleSet: { title: 'Create a virtual machine scale set', form: async (rg) => {
    const [lbs, vnets] = await Promise.all([list(`${rgPath(rg)}/providers/Microsoft.Network/loadBalancers`, V.net), list(`${rgPath(rg)}/providers/Microsoft.Network/virtualNetworks`, V.net)]);
    const subnets = [['', 'Create new virtual network']].concat(vnets.flatMap((vn) => (vn.properties.subnets || []).map((s) => [s.id, `${vn.name} / ${s.name}`])));
    const pools = [['', 'None']].concat(lbs.flatMap((lb) => (lb.properties.backendAddressPools || []).map((p) => [p.id, `${lb.name} / ${p.name}`])));
    const probes = [['', 'None']].concat(lbs.flatMap((lb) => (lb.properties.probes || []).map((p) => [p.id, `${lb.name} / ${p.name}`])));
    return formPanel('Basics', [
      field({ prop: 'name', label: 'Virtual machine scale set name' }), field({ prop: 'location', label: 'Region', value: 'eastus' }),
      field({ prop: 'image', label: 'Image', type: 'select', options: [['echo', 'nimbus:workloads:echo:latest'], ['script', 'nimbus:workloads:script:latest']] }),
      field({ prop: 'size', label: 'Size', value: 'Standard_B1s' }),
      field({ prop: 'capacity', label: 'Instance count', type: 'number', min: 0, max: 1000, value: 2 }),
      field({ prop: 'mode', label: 'Upgrade policy', type: 'select', options: [['Manual', 'Manual'], ['Automatic', 'Automatic'], ['Rolling', 'Rolling']] }),
      field({ prop: 'subnet', label: 'Virtual network / subnet', type: 'select', options: subnets }),
      field({ prop: 'pool', label: 'Load balancer backend pool', type: 'select', options: pools }),
      field({ prop: 'healthProbe', label: 'Health probe (application health)', type: 'select', options: probes,
        hint: 'The probe that reports instance health; Azure refuses later changes to rules that use it.' }),
    ], 'Create', async (f) => {
      const name = required(f, 'name');
      const loc = val(f, 'location');
      let subnet = val(f, 'subnet');
      if (!subnet) {
        const vn = netId(rg, 'virtualNetworks', `${name}-vnet`);
        await send('PUT', vn, { location: loc, properties: { addressSpace: { addressPrefixes: ['10.0.0.0/16'] }, subnets: [{ name: 'default', properties: { addressPrefix: '10.0.0.0/24' } }] } },
          `Creating virtual network '${name}-vnet'`);
        subnet = `${vn}/subnets/default`;
      }
      const ipc = { subnet: { id: subnet } };
      if (val(f, 'pool')) ipc.loadBalancerBackendAddressPools = [{ id: val(f, 'pool') }];
      const np = { networkInterfaceConfigurations: [{ name: `${name}-nic`, properties: { primary: true, ipConfigurations: [{ name: `${name}-ipconfig`, properties: ipc }] } }] };
      if (val(f, 'healthProbe')) np.healthProbe = { id: val(f, 'healthProbe') };
      const id = `${rgPath(rg)}/providers/Microsoft.Compute/virtualMachineScaleSets/${encodeURIComponent(name)}`;
      await send('PUT', id, { location: loc, sku: { name: val(f, 'size'), capacity: val(f, 'capacity') }, properties: {
        upgradePolicy: { mode: val(f, 'mode') }, virtualMachineProfile: {
          osProfile: { computerNamePrefix: name.slice(0, 9), adminUsername: 'azureuser', adminPassword: 'P' + crypto.randomUUID() },
          storageProfile: { imageReference: { publisher: 'nimbus', offer: 'workloads', sku: val(f, 'image'), version: 'latest' } },
          networkProfile: np } } }, `Creating virtual machine scale set '${name}'`);
      location.hash = `#/r${id}~instances`;
    });
  } },
  publicIP: { title: 'Create public IP address', form: async (rg) => formPanel('Basics', [
    field({ prop: 'name', label: 'Name' }), field({ prop: 'location', label: 'Region', value: 'eastus' }),
    field({ prop: 'sku', label: 'SKU', type: 'select', options: [['Standard', 'Standard'], ['Basic', 'Basic']] }),
    field({ prop: 'allocation', label: 'IP address assignment', type: 'radio', options: [['Static', 'Static'], ['Dynamic', 'Dynamic']], value: 'Static' }),
  ], 'Create', async (f) => {
    const name = required(f, 'name');
    const id = netId(rg, 'publicIPAddresses', name);
    await send('PUT', id, { location: val(f, 'location'), sku: { name: val(f, 'sku') }, properties: { publicIPAllocationMethod: val(f, 'allocation') } }, `Creating public IP address '${name}'`);
    location.hash = `#/r${id}`;
  }) },
  vnet: { title: 'Create virtual network', form: async (rg) => formPanel('Basics', [
    field({ prop: 'name', label: 'Name' }), field({ prop: 'location', label: 'Region', value: 'eastus' }),
    field({ prop: 'addressPrefixes', label: 'IPv4 address space', value: '10.0.0.0/16' }),
    field({ prop: 'subnetName', label: 'Subnet name', value: 'default' }), field({ prop: 'addressPrefix', label: 'Subnet address range', value: '10.0.0.0/24' }),
  ], 'Create', async (f) => {
    const name = required(f, 'name');
    const id = netId(rg, 'virtualNetworks', name);
    await send('PUT', id, { location: val(f, 'location'), properties: { addressSpace: { addressPrefixes: [val(f, 'addressPrefixes')] },
      subnets: [{ name: required(f, 'subnetName'), properties: { addressPrefix: val(f, 'addressPrefix') } }] } }, `Creating virtual network '${name}'`);
    location.hash = `#/r${id}~subnets`;
  }) },
  nsg: { title: 'Create network security group', form: async (rg) => formPanel('Basics', [
    field({ prop: 'name', label: 'Name' }), field({ prop: 'location', label: 'Region', value: 'eastus' }),
  ], 'Create', async (f) => {
    const name = required(f, 'name');
    const id = netId(rg, 'networkSecurityGroups', name);
    await send('PUT', id, { location: val(f, 'location'), properties: { securityRules: [] } }, `Creating network security group '${name}'`);
    location.hash = `#/r${id}~inbound`;
  }) },
  deployment: { title: 'Custom deployment', form: async (rg) => {
    const fileInto = (prop) => (ev) => {
      const file = ev.target.files[0];
      if (!file) return;
      file.text().then((t) => { ev.target.closest('form').querySelector(`[data-prop="${prop}"]`).value = t; });
    };
    const form = formPanel('Template', [
      field({ prop: 'name', label: 'Deployment name', value: `deployment-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}` }),
      field({ prop: 'template', label: 'Template (JSON)', type: 'textarea' }),
      field({ prop: 'templateFile', label: 'Or load a template file', type: 'file' }),
      field({ prop: 'parameters', label: 'Parameters (JSON)', type: 'textarea', hint: 'A parameters file or just its "parameters" object; may be empty.' }),
      field({ prop: 'parametersFile', label: 'Or load a parameters file', type: 'file' }),
      field({ prop: 'mode', label: 'Deployment mode', type: 'select', options: [['Incremental', 'Incremental'], ['Complete', 'Complete']] }),
    ], 'Review + create', async (f) => {
      const name = required(f, 'name');
      let template, parameters = {};
      try { template = JSON.parse(required(f, 'template')); } catch (e) { if (e instanceof ApiError) throw e; throw fieldError('template', `The template is not valid JSON: ${e.message}`); }
      const ptext = (val(f, 'parameters') || '').trim();
      if (ptext) {
        try { parameters = JSON.parse(ptext); } catch (e) { throw fieldError('parameters', `The parameters are not valid JSON: ${e.message}`); }
        if (parameters.parameters && (parameters.$schema || parameters.contentVersion)) parameters = parameters.parameters;
      }
      const id = `${rgPath(rg)}/providers/Microsoft.Resources/deployments/${encodeURIComponent(name)}`;
      const res = await call('PUT', withVer(id, V.res), { properties: { mode: val(f, 'mode'), template, parameters } });
      notify(`Deployment '${name}'`, `Submitted (${res.data.properties.provisioningState}); follow it on the deployment's page.`).done(true, 'Submitted');
      location.hash = `#/r${id}`;
    });
    form.querySelector('[data-prop="templateFile"]').addEventListener('change', fileInto('template'));
    form.querySelector('[data-prop="parametersFile"]').addEventListener('change', fileInto('parameters'));
    return form;
  } },
};

// ---- session --------------------------------------------------------------

function signedOut() {
  S.gen++;
  document.getElementById('signout').hidden = true;
  document.getElementById('who').textContent = '';
  crumbs([]);
  document.getElementById('main').replaceChildren(h('div', { class: 'signin' }, h('h1', { text: 'Sign in' }),
    h('p', {}, 'The portal signs in with a one-time link. On the machine nimbus runs on, run ', h('code', { text: 'nimbus portal' }),
      ' (as the owner of the data directory) and open the link it prints.')));
}

async function start() {
  const r = await fetch('/portal/session', { credentials: 'same-origin' });
  if (!r.ok) { signedOut(); return; }
  const s = await r.json();
  S.csrf = s.csrfToken;
  S.sub = s.subscriptionId;
  document.getElementById('who').textContent = `Subscription ${s.subscriptionId}`;
  const so = document.getElementById('signout');
  so.hidden = false;
  so.onclick = async () => {
    await fetch('/portal/signout', { method: 'POST', headers: { [CSRF_HEADER]: S.csrf }, credentials: 'same-origin' });
    signedOut();
  };
  window.addEventListener('hashchange', route);
  await route();
}

start();
