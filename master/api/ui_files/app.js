// Berth's web page: one Alpine component (the CSP build: no eval) over the master's API.
// Sections: the API (fetch with the bearer token) · live updates (watch as server-sent events)
// · formatting (pure) · the component: sign in, views, actions.
// Everything shown goes through x-text: names, labels and messages are other users' data.
import Alpine from './vendor/alpine-csp-3.17.4.esm.min.js';

const TOKEN_KEY = 'berth.token';
// the kinds each view shows, each followed by one watch stream while the view is open
const VIEW_KINDS = {
  overview: ['Node', 'Pod', 'Event'],
  nodes: ['Node', 'Pod'],
  pods: ['Pod', 'Event'],
  deployments: ['Deployment'],
  services: ['Service', 'HorizontalPodAutoscaler'],
  events: ['Event'],
  create: [],
};
const LISTS = {  // every namespace's objects of a kind
  Node: '/api/v1/nodes', Pod: '/api/v1/pods', Event: '/api/v1/events', Deployment: '/api/v1/deployments',
  Service: '/api/v1/services', HorizontalPodAutoscaler: '/api/v1/horizontalpodautoscalers',
};
// what the page offers, each asked of the API for this token (SelfSubjectAccessReview)
const ABILITIES = {
  apply: { verb: 'create', resource: 'pods' },
  deletePods: { verb: 'delete', resource: 'pods' },
  scale: { verb: 'update', resource: 'deployments', subresource: 'scale' },
  undo: { verb: 'update', resource: 'deployments' },
  cordon: { verb: 'patch', resource: 'nodes' },
  evict: { verb: 'create', resource: 'pods', subresource: 'eviction' },
};
const BACKOFF_FIRST = 500;  // ms before reconnecting a broken stream, doubled each time up to:
const BACKOFF_MOST = 15000;
const METRICS_EVERY = 15000;  // node usage is no object (nothing to watch): read again this often
const EVICTION_RETRY = 5000;  // a disruption budget's 429 is asked again after this (as kubectl)
const DRAIN_WAIT = 120000;
// the open streams, by kind: kept out of Alpine's reactive data (a proxied AbortSignal is no signal)
const followers = new Map();

// --- the API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const data = body && typeof body === 'object' ? body : { error: String(body || '') };
    super(data.error || `HTTP ${status}`);
    this.status = status;
    this.field = data.field || null;
    this.details = Array.isArray(data.details) ? data.details : [];
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

function headers(extra) {
  return { Authorization: `Bearer ${token()}`, ...extra };
}

async function api(method, path, body, contentType = 'application/json') {
  const init = { method, headers: headers({ Accept: 'application/json' }), cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers['Content-Type'] = contentType;
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const answer = await fetch(path, init);
  const text = await answer.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* a pod's log is text */ }
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

const mergePatch = (path, patch) => api('PATCH', path, patch, 'application/merge-patch+json');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const encode = encodeURIComponent;

function objectPath(obj, plural) {
  const meta = obj.metadata;
  return `/api/v1/namespaces/${encode(meta.namespace)}/${plural}/${encode(meta.name)}`;
}

// --- live updates: the watch API as server-sent events, read with fetch (it sends the header) ---

// Calls onFrame({event, id, data}) for each event of an SSE body; comments (heartbeats) are skipped.
async function readEvents(body, onFrame) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = { event: 'message', id: null, data: [] };
      for (const line of buffer.slice(0, end).split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') frame.event = text;
        else if (field === 'id') frame.id = text;
        else if (field === 'data') frame.data.push(text);
      }
      buffer = buffer.slice(end + 2);
      if (frame.data.length) onFrame({ ...frame, data: frame.data.join('\n') });
    }
  }
}

// One kind followed: listed, then watched from the list's revision; a broken stream reconnects
// from the last revision it saw (bounded backoff), an expired one (410) lists again.
class Follower {
  constructor(kind, store, onState) {
    this.kind = kind;
    this.store = store;  // the component's reactive map of this kind: key -> object
    this.onState = onState;
    this.since = null;
    this.stopped = false;
    this.abort = new AbortController();
  }

  start() { this.run(); return this; }

  stop() { this.stopped = true; this.abort.abort(); }

  async list() {
    const listed = await api('GET', LISTS[this.kind]);
    const fresh = {};
    for (const obj of listed.items) fresh[key(obj)] = obj;
    for (const name of Object.keys(this.store)) if (!(name in fresh)) delete this.store[name];
    Object.assign(this.store, fresh);
    this.since = listed.metadata.resourceVersion;
  }

  async run() {
    let backoff = BACKOFF_FIRST;
    while (!this.stopped) {
      try {
        if (this.since === null) await this.list();
        const answer = await fetch(`/api/v1/watch?kind=${this.kind}&since=${this.since}&timeoutSeconds=300`, {
          headers: headers({ Accept: 'text/event-stream' }), signal: this.abort.signal, cache: 'no-store',
          credentials: 'omit',
        });
        if (answer.status === 410) { this.since = null; continue; }
        if (!answer.ok) throw new ApiError(answer.status, await answer.json().catch(() => null));
        this.onState(this.kind, true);
        backoff = BACKOFF_FIRST;
        await readEvents(answer.body, (frame) => this.apply(frame));
      } catch (err) {
        if (this.stopped) return;
        this.onState(this.kind, false, err);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, BACKOFF_MOST);
      }
    }
  }

  apply(frame) {
    const event = JSON.parse(frame.data);
    if (event.type === 'ERROR') {
      if (event.code === 410) this.since = null;
      throw new ApiError(event.code, event);
    }
    if (frame.id !== null) this.since = frame.id;
    if (!event.object) return;  // a bookmark
    if (event.type === 'DELETED') delete this.store[key(event.object)];
    else this.store[key(event.object)] = event.object;
  }
}

// --- formatting (pure) ------------------------------------------------------------------------

function key(obj) {
  return `${obj.metadata.namespace || ''}/${obj.metadata.name}`;
}

function byName(a, b) {
  return key(a).localeCompare(key(b));
}

function condition(obj, type) {
  return ((obj.status || {}).conditions || []).find((c) => c.type === type) || null;
}

function age(timestamp) {
  if (!timestamp) return '';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

function bytes(size) {
  for (const [unit, factor] of [['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]]) {
    if (size >= factor) return `${(size / factor).toFixed(1)}${unit}`;
  }
  return `${size}B`;
}

// kubectl's STATUS column: terminating, a container's waiting or terminated reason, else the phase
function podStatus(pod) {
  if (pod.metadata.deletionTimestamp) return 'Terminating';
  const status = pod.status || {};
  for (const entry of status.containerStatuses || []) {
    const state = entry.state || {};
    if (state.waiting && state.waiting.reason) return state.waiting.reason;
    if (state.terminated && state.terminated.reason && status.phase !== 'Succeeded') return state.terminated.reason;
  }
  return status.phase || 'Pending';
}

// kubectl drain's filter (berth/cli/drain.py): a running pod no controller would make again
function unmanaged(pod) {
  const phase = (pod.status || {}).phase;
  const owned = (pod.metadata.ownerReferences || []).some((ref) => ref.controller);
  return !owned && phase !== 'Succeeded' && phase !== 'Failed';
}

// rollout undo (berth/cli/rollouts.py): the ReplicaSets a Deployment controls, by uid, and revision
const REVISION = 'deployment.berth.io/revision';
const CHANGE_CAUSE = 'kubernetes.io/change-cause';
const HASH_LABEL = 'pod-template-hash';

function revisionOf(obj) {
  const value = (obj.metadata.annotations || {})[REVISION] || '';
  return /^[0-9]+$/.test(value) ? Number(value) : 0;
}

function controlledBy(owner, objects) {
  return objects.filter((obj) => (obj.metadata.ownerReferences || [])
    .some((ref) => ref.controller && ref.uid === owner.metadata.uid));
}

function withoutHash(template) {
  const meta = template.metadata || {};
  const labels = { ...(meta.labels || {}) };
  delete labels[HASH_LABEL];
  return { ...template, metadata: { ...meta, labels } };
}

// --- the component ------------------------------------------------------------------------------

Alpine.data('berth', () => ({
  signedIn: false,
  tokenInput: '',
  signInError: '',
  user: '',
  can: Object.fromEntries(Object.keys(ABILITIES).map((name) => [name, false])),
  view: 'overview',
  objects: Object.fromEntries(Object.keys(LISTS).map((kind) => [kind, {}])),
  usage: {},
  live: {},
  notice: '',
  failure: '',
  detail: { name: '', namespace: '', what: '', logs: '', uid: '' },
  scaleTo: {},
  drainBlocked: null,
  manifest: '',
  applyNamespace: 'default',
  applied: [],
  applyError: { message: '', details: [] },
  metricsTimer: null,
  ticker: null,
  now: Date.now(),

  init() {
    window.addEventListener('hashchange', () => this.route());
    if (token()) this.start();
  },

  // --- sign in ---

  async signIn() {
    this.signInError = '';
    const typed = this.tokenInput.trim();
    if (!typed) { this.signInError = 'Type a token.'; return; }
    sessionStorage.setItem(TOKEN_KEY, typed);
    this.tokenInput = '';
    await this.start();
  },

  async start() {
    try {
      const review = await api('POST', '/api/v1/selfsubjectreviews', {});
      this.user = review.status.userInfo.username;
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      this.signInError = err.status === 401 ? 'That token was refused.' : `Cannot reach the API: ${err.message}`;
      return;
    }
    await this.askAbilities();
    this.signedIn = true;
    this.ticker = setInterval(() => { this.now = Date.now(); }, 5000);
    this.route();
  },

  async askAbilities() {
    const answers = await Promise.all(Object.entries(ABILITIES).map(async ([name, attributes]) => {
      const body = { apiVersion: 'berth/v1', kind: 'SelfSubjectAccessReview',
                     spec: { resourceAttributes: attributes } };
      try {
        return [name, (await api('POST', '/api/v1/selfsubjectaccessreviews', body)).status.allowed === true];
      } catch {
        return [name, false];
      }
    }));
    this.can = Object.fromEntries(answers);
  },

  signOut() {
    for (const follower of followers.values()) follower.stop();
    followers.clear();
    clearInterval(this.metricsTimer);
    clearInterval(this.ticker);
    sessionStorage.removeItem(TOKEN_KEY);
    this.signedIn = false;
    this.user = '';
    history.replaceState(null, '', '#');
  },

  whoText() { return `signed in as ${this.user}`; },

  // --- views: the hash names one; its kinds are followed, the others' streams closed ---

  route() {
    if (!this.signedIn) return;
    const asked = location.hash.replace(/^#/, '');
    this.view = asked in VIEW_KINDS && (asked !== 'create' || this.can.apply) ? asked : 'overview';
    this.notice = '';
    this.failure = '';
    const wanted = new Set(VIEW_KINDS[this.view]);
    for (const [kind, follower] of followers) {
      if (!wanted.has(kind)) { follower.stop(); followers.delete(kind); delete this.live[kind]; }
    }
    for (const kind of wanted) {
      if (!followers.has(kind)) {
        followers.set(kind, new Follower(kind, this.objects[kind], (k, up, err) => this.streamState(k, up, err))
          .start());
      }
    }
    clearInterval(this.metricsTimer);
    if (wanted.has('Node')) {
      this.readMetrics();
      this.metricsTimer = setInterval(() => this.readMetrics(), METRICS_EVERY);
    }
  },

  streamState(kind, up, err) {
    this.live[kind] = up;
    if (!up && err && err.status === 401) this.signOut();
  },

  liveText() {
    const kinds = Object.keys(this.live);
    if (!kinds.length) return '';
    return kinds.every((kind) => this.live[kind]) ? 'live' : 'reconnecting…';
  },

  navClass(view) { return this.view === view ? 'current' : ''; },

  async readMetrics() {
    try { this.usage = (await api('GET', '/api/v1/metrics/nodes')).items || {}; } catch { /* shown as "?" */ }
  },

  async act(what, action) {
    this.notice = '';
    this.failure = '';
    try {
      const said = await action();  // a sentence of its own, or an API answer: then `what`
      this.notice = typeof said === 'string' ? said : what;
    } catch (err) {
      this.failure = `${what}: ${err.message}${err.field ? ` (field ${err.field})` : ''}`;
    }
  },

  // --- lists, sorted ---

  nodeList() { return Object.values(this.objects.Node).sort(byName); },
  podList() { return Object.values(this.objects.Pod).sort(byName); },
  deploymentList() { return Object.values(this.objects.Deployment).sort(byName); },
  serviceList() { return Object.values(this.objects.Service).sort(byName); },
  autoscalerList() { return Object.values(this.objects.HorizontalPodAutoscaler).sort(byName); },

  eventList(limit) {
    return Object.values(this.objects.Event)
      .sort((a, b) => String(b.lastTimestamp || '').localeCompare(String(a.lastTimestamp || '')))
      .slice(0, limit);
  },

  podPhases() {
    const counts = {};
    for (const pod of Object.values(this.objects.Pod)) {
      const phase = (pod.status || {}).phase || 'Pending';
      counts[phase] = (counts[phase] || 0) + 1;
    }
    return Object.keys(counts).sort().map((phase) => ({ phase, count: counts[phase] }));
  },

  // --- formatting, for the templates ---

  key,
  podStatus,
  age(timestamp) { return this.now && age(timestamp); },
  statusClass(text) {
    if (/^(Ready|Running|Succeeded)/.test(text)) return 'ok';
    if (/^(Pending|ContainerCreating|Terminating)/.test(text) || /SchedulingDisabled/.test(text)) return 'busy';
    return 'bad';
  },
  nodeStatus(node) {
    const ready = condition(node, 'Ready');
    const state = !ready ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady';
    return node.spec.unschedulable ? `${state},SchedulingDisabled` : state;
  },
  nodeRoles(node) {
    const prefix = 'node-role.kubernetes.io/';
    const roles = Object.keys(node.metadata.labels || {}).filter((k) => k.startsWith(prefix))
      .map((k) => k.slice(prefix.length)).filter(Boolean).sort();
    return roles.join(',') || '<none>';
  },
  cpuPercent(node) {
    const usage = this.usage[node.metadata.name];
    return usage && typeof usage.cpuPercent === 'number' ? usage.cpuPercent : 0;
  },
  cpuText(node) {
    const usage = this.usage[node.metadata.name];
    return usage && typeof usage.cpuPercent === 'number' ? `${usage.cpuPercent.toFixed(0)}%` : '?';
  },
  memoryPercent(node) {
    const usage = this.usage[node.metadata.name];
    const capacity = ((node.status || {}).capacity || {}).memory;
    return usage && typeof usage.memoryUsed === 'number' && capacity ? (100 * usage.memoryUsed) / capacity : 0;
  },
  memoryText(node) {
    const usage = this.usage[node.metadata.name];
    if (!usage || typeof usage.memoryUsed !== 'number') return '?';
    return `${bytes(usage.memoryUsed)} (${this.memoryPercent(node).toFixed(0)}%)`;
  },
  podsOn(node) {
    return Object.values(this.objects.Pod).filter((pod) => pod.spec.nodeName === node.metadata.name).length;
  },
  podReady(pod) {
    const statuses = (pod.status || {}).containerStatuses || [];
    return `${statuses.filter((s) => s.ready).length}/${pod.spec.containers.length}`;
  },
  restarts(pod) {
    return ((pod.status || {}).containerStatuses || []).reduce((sum, s) => sum + (s.restartCount || 0), 0);
  },
  podIP(pod) { return (pod.status || {}).podIP || ''; },
  involved(event) {
    const obj = event.involvedObject || {};
    return `${String(obj.kind || '').toLowerCase()}/${obj.name || ''}`;
  },
  deploymentReady(deployment) {
    return `${(deployment.status || {}).readyReplicas || 0}/${deployment.spec.replicas}`;
  },
  updated(deployment) { return (deployment.status || {}).updatedReplicas || 0; },
  rolloutText(deployment) {
    const progressing = condition(deployment, 'Progressing');
    return progressing ? progressing.reason || progressing.status : '';
  },
  scaleLabel(deployment) { return `Replicas of ${deployment.metadata.name}`; },
  portsText(service) {
    return (service.spec.ports || []).map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol || 'TCP'}`)
      .join(',');
  },
  labelsText(labels) {
    return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(',');
  },
  referenceText(hpa) {
    const ref = hpa.spec.scaleTargetRef || {};
    return `${ref.kind || ''}/${ref.name || ''}`;
  },
  targetsText(hpa) {
    const current = ((hpa.status || {}).currentMetrics || []).map((m) => ((m.resource || {}).current || {}).averageUtilization);
    return (hpa.spec.metrics || []).map((m, i) => {
      const resource = m.resource || {};
      const target = (resource.target || {}).averageUtilization;
      const now = current[i] === undefined ? '<unknown>' : `${current[i]}%`;
      return `${resource.name || m.type}: ${now}/${target}%`;
    }).join(', ');
  },

  // --- nodes: cordon, uncordon, drain (kubectl's: cordon, then evict each pod) ---

  cordon(node, on) {
    const name = node.metadata.name;
    return this.act(`node/${name} ${on ? 'cordoned' : 'uncordoned'}`,
      () => mergePatch(`/api/v1/nodes/${encode(name)}`, { spec: { unschedulable: on } }));
  },

  drain(node, force) {
    const name = node.metadata.name;
    this.drainBlocked = null;
    return this.act(`node/${name} drained`, async () => {
      await mergePatch(`/api/v1/nodes/${encode(name)}`, { spec: { unschedulable: true } });
      const listed = await api('GET', `/api/v1/pods?fieldSelector=${encode(`spec.nodeName=${name}`)}`);
      const blocking = listed.items.filter(unmanaged);
      if (blocking.length && !force) {
        this.drainBlocked = node;
        throw new Error('cannot delete Pods that declare no controller (use --force to override): '
          + blocking.map(key).join(', '));
      }
      for (const pod of listed.items) await this.evict(pod);
      const deadline = Date.now() + DRAIN_WAIT;
      const uids = new Set(listed.items.map((pod) => pod.metadata.uid));
      while (Date.now() < deadline) {  // the pods stream removes them as they go
        const left = Object.values(this.objects.Pod).filter((pod) => uids.has(pod.metadata.uid));
        if (!left.length) return `node/${name} drained`;
        this.notice = `evicting ${left.map(key).join(', ')}`;
        await sleep(1000);
      }
      throw new Error(`pods still on the node after ${DRAIN_WAIT / 1000}s`);
    });
  },

  drainForce() {
    const node = this.drainBlocked;
    return node && this.drain(node, true);
  },

  async evict(pod) {
    const body = { apiVersion: 'berth/v1', kind: 'Eviction',
                   metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace } };
    const deadline = Date.now() + DRAIN_WAIT;
    for (;;) {
      try {
        await api('POST', `${objectPath(pod, 'pods')}/eviction`, body);
        return;
      } catch (err) {
        if (err.status === 404) return;  // gone already
        if (err.status !== 429 || Date.now() > deadline) throw err;
        this.notice = `${key(pod)}: ${err.message}; retrying`;  // a disruption budget says not yet
        await sleep(EVICTION_RETRY);
      }
    }
  },

  // --- pods: logs, events, delete ---

  async showLogs(pod) {
    this.detail = { name: pod.metadata.name, namespace: pod.metadata.namespace, what: 'logs', logs: '',
                    uid: pod.metadata.uid };
    try {
      this.detail.logs = String(await api('GET', `${objectPath(pod, 'pods')}/log?tailLines=500`) ?? '');
    } catch (err) {
      this.detail.logs = `(no log: ${err.message})`;
    }
  },

  showEvents(pod) {
    this.detail = { name: pod.metadata.name, namespace: pod.metadata.namespace, what: 'events', logs: '',
                    uid: pod.metadata.uid };
  },

  detailTitle() {
    return `${this.detail.what === 'logs' ? 'Logs' : 'Events'} of pod ${this.detail.namespace}/${this.detail.name}`;
  },

  detailEvents() {
    const { name, namespace } = this.detail;
    return this.eventList(1000).filter((event) => {
      const obj = event.involvedObject || {};
      return obj.kind === 'Pod' && obj.name === name && obj.namespace === namespace;
    });
  },

  deletePod(pod) {
    return this.act(`pod/${pod.metadata.name} deleted`, () => api('DELETE', objectPath(pod, 'pods')));
  },

  // --- deployments: scale (the scale subresource), rollout undo ---

  setScaleTo(deployment, value) { this.scaleTo[key(deployment)] = value; },

  scale(deployment) {
    const name = deployment.metadata.name;
    const wanted = String(this.scaleTo[key(deployment)] ?? '').trim();
    return this.act(`deployment/${name} scaled`, () => {
      if (!/^[0-9]+$/.test(wanted)) throw new Error('give the replicas, a whole number');
      return mergePatch(`${objectPath(deployment, 'deployments')}/scale`, { spec: { replicas: Number(wanted) } });
    });
  },

  // kubectl's undo: the template of the revision before the newest becomes the Deployment's, written
  // with the resourceVersion read (a Deployment changed meanwhile is a conflict, not overwritten)
  undo(deployment) {
    const name = deployment.metadata.name;
    return this.act(`deployment/${name} rolled back`, async () => {
      const current = await api('GET', objectPath(deployment, 'deployments'));
      if (current.spec.paused) throw new Error('you cannot roll back a paused deployment; resume it first');
      const labels = this.labelsText(current.spec.selector.matchLabels);
      const listed = await api('GET', `/api/v1/namespaces/${encode(current.metadata.namespace)}/replicasets`
        + `?labelSelector=${encode(labels)}`);
      const history = controlledBy(current, listed.items).filter(revisionOf)
        .sort((a, b) => revisionOf(a) - revisionOf(b));
      if (history.length < 2) throw new Error(`deployment "${name}" has no previous revision to roll back to`);
      const target = history[history.length - 2];
      const template = withoutHash(target.spec.template);
      if (JSON.stringify(template) === JSON.stringify(withoutHash(current.spec.template))) {
        return `deployment/${name} skipped rollback (current template already matches revision ${revisionOf(target)})`;
      }
      const annotations = { ...(current.metadata.annotations || {}) };
      const cause = (target.metadata.annotations || {})[CHANGE_CAUSE];
      if (cause) annotations[CHANGE_CAUSE] = cause; else delete annotations[CHANGE_CAUSE];
      const replaced = { ...current, metadata: { ...current.metadata, annotations }, spec: { ...current.spec, template } };
      await api('PUT', objectPath(current, 'deployments'), replaced);
      return `deployment/${name} rolled back to revision ${revisionOf(target)}`;
    });
  },

  // --- create: the manifest's documents applied in one request (server-side YAML, as `berth apply`) ---

  async applyManifest() {
    this.applied = [];
    this.applyError = { message: '', details: [] };
    const namespace = this.applyNamespace.trim() || 'default';
    try {
      const result = await api('POST', `/api/v1/apply?namespace=${encode(namespace)}`, this.manifest,
        'application/yaml');
      this.applied = result.items.map((obj, i) => `${obj.kind.toLowerCase()}/${obj.metadata.name} `
        + `${(result.actions || [])[i] || 'configured'}`);
    } catch (err) {
      // each field the API names, with its message (the first is the error's own message too)
      const details = err.details.map((d) => ({
        text: `${d.document !== undefined ? `document ${d.document}, ` : ''}field ${d.field}: ${d.error}`,
      }));
      if (!details.length && err.field) details.push({ text: `field ${err.field}` });
      this.applyError = { message: err.message, details };
    }
  },
}));

Alpine.start();
