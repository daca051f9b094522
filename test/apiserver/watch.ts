// Watch, field selectors and list pagination for the test apiserver, with kube-apiserver's wire
// behaviour: a watch is one chunked HTTP 200 response of newline-separated JSON events; a
// resourceVersion older than the bounded history is an ERROR event carrying a 410 Expired Status
// (the watch cache's `too old resource version: N (M)`, sent after the 200 as the cacher does);
// bookmarks carry only metadata.resourceVersion; an object that stops (starts) matching a field
// selector is seen as DELETED (ADDED). Lists page with limit/continue over a consistent snapshot
// rebuilt from the same history, and a continue token older than it is 410 Expired.
import type * as http from 'node:http';
import { isObject, type Json, type JsonObject } from '../../src/cni/validate';
import * as S from './status';
import { apiVersionOf, metaOf, type Change, type ObjectStore, type ResourceType } from './store';

export interface WatchOptions {
  /** Events kept for resuming watches and continuing lists (kube-apiserver's watch cache is ~100+). */
  historySize?: number;
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK; kube-apiserver: about a minute. */
  bookmarkIntervalMs?: number;
}

type Matcher = (obj: JsonObject) => boolean;

const str = (v: Json | undefined): string => (typeof v === 'string' ? v : '');
const byKey = (a: JsonObject, b: JsonObject): number => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0);

/** Fields a field selector may name: every type has metadata.*, pods a few spec/status fields. */
function fieldValue(t: ResourceType, obj: JsonObject, field: string): string | undefined {
  const m = metaOf(obj);
  if (field === 'metadata.name') return str(m.name);
  if (field === 'metadata.namespace') return str(m.namespace);
  if (t.resource === 'pods' && !t.group) {
    const spec = isObject(obj.spec) ? obj.spec : {};
    const st = isObject(obj.status) ? obj.status : {};
    if (field === 'spec.nodeName') return str(spec.nodeName);
    if (field === 'spec.serviceAccountName') return str(spec.serviceAccountName);
    if (field === 'status.phase') return str(st.phase);
    if (field === 'status.podIP') return str(st.podIP);
  }
  return undefined;
}

/** `a=b,c==d,e!=f`; an unknown field is 400 `field label not supported: X`, as the apiserver says. */
export function parseFieldSelector(t: ResourceType, sel: string | undefined): Matcher {
  if (!sel) return () => true;
  const probe: JsonObject = { metadata: {} };
  const tests = sel.split(',').map((term): Matcher => {
    const m = term.trim().match(/^([^!=\s]+)\s*(!=|==|=)\s*(.*)$/);
    if (!m) throw S.badRequest(`invalid selector: '${sel}'; can't understand '${term}'`);
    const [, field = '', op, value = ''] = m;
    if (fieldValue(t, probe, field) === undefined) throw S.badRequest(`field label not supported: ${field}`);
    return op === '!=' ? (o) => fieldValue(t, o, field) !== value : (o) => fieldValue(t, o, field) === value;
  });
  return (o) => tests.every((f) => f(o));
}

function keyOf(obj: JsonObject): string {
  const m = metaOf(obj);
  return `${str(m.namespace)}/${str(m.name)}`;
}

/** Watch objects carry kind/apiVersion even for core types (lists drop them per item). */
function typed(t: ResourceType, obj: JsonObject): JsonObject {
  const { kind: _k, apiVersion: _a, ...rest } = obj;
  return { kind: t.kind, apiVersion: apiVersionOf(t), ...structuredClone(rest) };
}

interface Watcher {
  t: ResourceType;
  ns: string | undefined;
  match: Matcher;
  bookmarks: boolean;
  res: http.ServerResponse;
  timers: NodeJS.Timeout[];
  held: string[];
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isObject(v) && typeof v.rv === 'number' && typeof v.start === 'string') return { rv: v.rv, start: v.start };
  } catch {
    // reported below
  }
  throw S.badRequest(`continue key is not valid: ${token}`);
}

const CONTINUE_EXPIRED =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

export class WatchHub {
  private history: Change[] = [];
  /** Every change after this resourceVersion is in `history`; older ones are gone (410). */
  private floor: number;
  private readonly watchers = new Set<Watcher>();
  private readonly size: number;
  private readonly bookmarkMs: number;
  private holding = false;

  constructor(private readonly store: ObjectStore, o: WatchOptions = {}) {
    this.size = o.historySize ?? 200;
    this.bookmarkMs = o.bookmarkIntervalMs ?? 60_000;
    this.floor = store.currentRv();
    store.onChange = (c) => this.record(c);
  }

  private record(c: Change): void {
    this.history.push(c);
    while (this.history.length > this.size) this.floor = this.history.shift()!.rv;
    for (const w of this.watchers) this.deliver(w, c);
  }

  private deliver(w: Watcher, c: Change): void {
    if (c.t !== w.t) return;
    const inNs = (o: JsonObject) => w.ns === undefined || str(metaOf(o).namespace) === w.ns;
    const now = c.type !== 'DELETED' && inNs(c.obj) && w.match(c.obj);
    const before = c.prev !== undefined && inNs(c.prev) && w.match(c.prev);
    if (c.type === 'DELETED') {
      if (before) this.send(w, 'DELETED', c.obj);
    } else if (now && before) this.send(w, 'MODIFIED', c.obj);
    else if (now) this.send(w, 'ADDED', c.obj);
    else if (before) {
      // Left the selection: the cacher reports the previous state, at this event's version.
      const gone = structuredClone(c.prev!);
      metaOf(gone).resourceVersion = String(c.rv);
      this.send(w, 'DELETED', gone);
    }
  }

  private send(w: Watcher, type: string, obj: JsonObject): void {
    const line = JSON.stringify({ type, object: type === 'ERROR' ? obj : typed(w.t, obj) }) + '\n';
    if (this.holding && type !== 'ERROR') w.held.push(line);
    else w.res.write(line);
  }

  private bookmark(w: Watcher): void {
    if (w.held.length) return; // a bookmark must never overtake the events it vouches for
    w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: w.t.kind, apiVersion: apiVersionOf(w.t), metadata: { resourceVersion: String(this.store.currentRv()) } } }) + '\n');
  }

  /** GET ...?watch=true: answers 200 and streams until timeoutSeconds, close() or cut(). */
  serve(t: ResourceType, ns: string | undefined, q: URLSearchParams, res: http.ServerResponse): void {
    const match = parseFieldSelector(t, q.get('fieldSelector') ?? undefined);
    const labels = q.get('labelSelector');
    if (labels) throw S.badRequest('the test apiserver does not support labelSelector on watch');
    const rvText = q.get('resourceVersion') ?? '';
    if (rvText !== '' && !/^[0-9]+$/.test(rvText)) throw S.badRequest(`invalid resource version: ${rvText}`);
    const w: Watcher = { t, ns, match, bookmarks: q.get('allowWatchBookmarks') === 'true', res, timers: [], held: [] };
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // kube-apiserver flushes the 200 at once: a client knows its watch is open before any event.
    res.flushHeaders();
    const rv = rvText === '' ? 0 : Number(rvText);
    if (rv === 0) {
      // "" and "0": the current state as synthetic ADDED events, then what follows.
      const items = this.store.all(t).filter((o) => (ns === undefined || str(metaOf(o).namespace) === ns) && match(o));
      for (const o of items.sort(byKey)) this.send(w, 'ADDED', o);
    } else if (rv < this.floor) {
      this.send(w, 'ERROR', S.status(410, 'Expired', `too old resource version: ${rv} (${this.floor})`));
      res.end();
      return;
    } else {
      for (const c of this.history) if (c.rv > rv) this.deliver(w, c);
    }
    this.watchers.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    if (timeout > 0) w.timers.push(setTimeout(() => this.end(w), timeout * 1000));
    if (w.bookmarks) w.timers.push(setInterval(() => this.bookmark(w), this.bookmarkMs));
    res.on('close', () => this.drop(w));
  }

  private drop(w: Watcher): void {
    for (const t of w.timers) clearTimeout(t);
    this.watchers.delete(w);
  }

  private end(w: Watcher): void {
    this.drop(w);
    w.res.end();
  }

  /** A BOOKMARK now to every watch that asked for them. */
  bookmarkAll(): void {
    for (const w of this.watchers) if (w.bookmarks) this.bookmark(w);
  }

  /** Drops every watch connection mid-stream (no terminating chunk): a cut network. */
  cut(): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) {
      this.drop(w);
      w.res.socket?.destroy();
    }
    return n;
  }

  /** Forgets the history, as an etcd compaction does: older resourceVersions become 410 Expired. */
  compact(): void {
    this.history = [];
    this.floor = this.store.currentRv();
  }

  /** While held, events queue per watch instead of being sent (a slow watch); release() sends them. */
  hold(on: boolean): void {
    this.holding = on;
    if (on) return;
    for (const w of this.watchers) {
      for (const line of w.held) w.res.write(line);
      w.held = [];
    }
  }

  count(): number {
    return this.watchers.size;
  }

  closeAll(): void {
    for (const w of [...this.watchers]) this.end(w);
  }

  /** The objects of type t as they were at resourceVersion rv (undoing later history). */
  private snapshot(t: ResourceType, rv: number): JsonObject[] {
    const state = new Map(this.store.all(t).map((o) => [keyOf(o), o]));
    for (let i = this.history.length - 1; i >= 0; i--) {
      const c = this.history[i]!;
      if (c.rv <= rv) break;
      if (c.t !== t) continue;
      if (c.prev && c.type !== 'ADDED') state.set(keyOf(c.prev), structuredClone(c.prev));
      else state.delete(keyOf(c.obj));
    }
    return [...state.values()];
  }

  /** GET on a collection: field selector, then limit/continue over a snapshot. */
  list(t: ResourceType, ns: string | undefined, q: URLSearchParams, labelled: (items: JsonObject[]) => JsonObject[]): JsonObject {
    const match = parseFieldSelector(t, q.get('fieldSelector') ?? undefined);
    const limitText = q.get('limit') ?? '';
    const limit = limitText === '' ? 0 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 0) throw S.badRequest(`invalid limit: ${limitText}`);
    const token = q.get('continue');
    let rv = this.store.currentRv();
    let start = '';
    let items: JsonObject[];
    if (token) {
      ({ rv, start } = decodeContinue(token));
      if (rv < this.floor) throw new S.StatusError(S.status(410, 'Expired', CONTINUE_EXPIRED));
      items = this.snapshot(t, rv);
    } else items = this.store.all(t);
    items = labelled(items.filter((o) => (ns === undefined || str(metaOf(o).namespace) === ns) && match(o) && keyOf(o) > start));
    items.sort(byKey);
    const metadata: JsonObject = { resourceVersion: String(rv) };
    if (limit > 0 && items.length > limit) {
      const rest = items.length - limit;
      items = items.slice(0, limit);
      metadata.continue = encodeContinue(rv, keyOf(items[items.length - 1]!));
      metadata.remainingItemCount = rest;
    }
    // Typed core lists carry no per-item kind; custom resource lists (unstructured) do.
    if (!t.group) for (const o of items) { delete o.kind; delete o.apiVersion; }
    return { kind: t.listKind, apiVersion: apiVersionOf(t), metadata, items };
  }
}
