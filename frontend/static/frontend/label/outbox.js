// The outbox: every submit and skip is kept (in localStorage) until the server acknowledges it, and
// sent with an Idempotency-Key made once per answer, so a retry after a lost response, a reload or a
// night offline is never lost and never counted twice. Transient failures (offline, 5xx, 429, an
// ended session) keep the entry and retry with exponential backoff; a refusal (409, other 4xx) drops it.
// No DOM: the page learns what happened through the callbacks.

export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 30000;

/** A random 128-bit key in hex (crypto.getRandomValues also works outside secure contexts). */
export function newKey(fill = (bytes) => globalThis.crypto.getRandomValues(bytes)) {
  const b = new Uint8Array(16);
  fill(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The entry of an annotation: body is {value, lead_time_ms, accepted_suggestion?}. */
export function annotateEntry(item, body, key, at = Date.now()) {
  return { kind: "annotate", key, item: item.id, external_id: item.external_id, body, at };
}

export function skipEntry(item, key, at = Date.now()) {
  return { kind: "skip", key, item: item.id, external_id: item.external_id, at };
}

/** The request that sends an entry: [method, url, {body?, headers}] for lib/http.js's api(). */
export function entryRequest(entry) {
  const headers = { "Idempotency-Key": entry.key };
  if (entry.kind === "skip") return ["POST", `/api/items/${entry.item}/skip`, { headers }];
  return ["POST", `/api/items/${entry.item}/annotations`, { body: entry.body, headers }];
}

/**
 * What an answer means for the entry:
 *   "ok"       saved (or saved before: the same key answers the same) — drop it
 *   "retry"    offline (status 0), a server error or throttled — keep it, try again later
 *   "session"  the session ended (401, or 403 for CSRF) — keep it until the expert logs in again
 *   "gone"     409: the item's slots were taken meanwhile — drop it
 *   "rejected" any other refusal — drop it and say why
 */
export function classify(status, data) {
  if (status === 200 || status === 201 || status === 204) return "ok";
  if (status === 0 || status >= 500 || status === 429) return "retry";
  const detail = (data && data.detail) || "";
  if (status === 401 || (status === 403 && /CSRF/i.test(detail))) return "session";
  if (status === 409) return "gone";
  return "rejected";
}

/** The outcome a caller sees: "ok", "offline" (kept for a retry), "gone" or "error". */
export const OUTCOME = { ok: "ok", retry: "offline", session: "offline", gone: "gone", rejected: "error" };

/** Exponential backoff: next() gives the delay to wait now and doubles the one after, up to max. */
export class Backoff {
  constructor(first = RETRY_FIRST_MS, max = RETRY_MAX_MS) {
    this.first = first;
    this.max = max;
    this.delay = first;
  }

  next() {
    const d = this.delay;
    this.delay = Math.min(d * 2, this.max);
    return d;
  }

  reset() {
    this.delay = this.first;
  }
}

export class Outbox {
  /**
   * store: get/set of JSON values (lib/store.js); key: where the entries are kept;
   * post(entry) → Promise<{status, data}>; timers: {setTimeout} (injectable for tests);
   * onSettled(entry, result) after each answer; onChange() when the entries changed;
   * onFlushed(results) after each flush (also an empty one).
   */
  constructor({ store, key, post, timers = globalThis, onSettled = () => {}, onChange = () => {}, onFlushed = () => {} }) {
    Object.assign(this, { store, key, post, timers, onSettled, onChange, onFlushed });
    this.sending = new Map(); // Idempotency-Key -> the promise of its request
    this.backoff = new Backoff();
    this.timer = null;
  }

  entries() {
    return this.store.get(this.key) || [];
  }

  get size() {
    return this.entries().length;
  }

  /** The items whose answers are not saved yet (the server still leases them to us). */
  itemIds() {
    return this.entries().map((e) => e.item);
  }

  find(key) {
    return this.entries().find((e) => e.key === key) || null;
  }

  add(entry) {
    this.store.set(this.key, [...this.entries().filter((e) => e.key !== entry.key), entry]);
    this.onChange();
  }

  remove(key) {
    this.store.set(this.key, this.entries().filter((e) => e.key !== key));
    this.onChange();
  }

  /** Sends one entry (once at a time per key); resolves to {outcome, reason, status, data}. */
  send(entry) {
    if (this.sending.has(entry.key)) return this.sending.get(entry.key);
    const p = (async () => {
      let res;
      try {
        res = await this.post(entry);
      } catch {
        res = { status: 0, data: null };
      } finally {
        this.sending.delete(entry.key);
      }
      const reason = classify(res.status, res.data);
      if (reason === "retry" || reason === "session") this.scheduleRetry();
      else this.remove(entry.key);
      const result = { outcome: OUTCOME[reason], reason, status: res.status, data: res.data };
      this.onSettled(entry, result);
      return result;
    })();
    this.sending.set(entry.key, p);
    return p;
  }

  /** One retry of everything, after the current backoff delay (a no-op while one is scheduled). */
  scheduleRetry() {
    if (this.timer) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      return this.flush();
    }, this.backoff.next());
  }

  /** Sends every kept entry; the backoff starts over once no answer asked for a retry. */
  async flush() {
    const entries = this.entries();
    const results = await Promise.all(entries.map((e) => this.send(e)));
    if (entries.length && results.every((r) => r.outcome !== "offline")) this.backoff.reset();
    this.onFlushed(results);
    return results;
  }

  /** The browser is back online: retry at once, and from the shortest delay. */
  online() {
    this.backoff.reset();
    return this.flush();
  }
}
