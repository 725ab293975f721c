// Loading items: GET /api/projects/{id}/next?exclude=… and one item fetched ahead while the expert
// works on the current one, so the next item shows at once after a submit. No DOM.

export const PREFETCH_MAX_EXCLUDE = 5;

/** The URL of /next excluding the given item ids (nulls and repeats dropped, at most max of them). */
export function nextUrl(project, exclude, max = PREFETCH_MAX_EXCLUDE) {
  const ids = [...new Set(exclude.filter((x) => x != null))].slice(0, max);
  const q = ids.length ? `?exclude=${ids.join(",")}` : "";
  return `/api/projects/${project}/next${q}`;
}

/**
 * The next item (or null when none is left) through api(); throws on any other answer, with
 * err.fatal set for 401/403 (the session ended or access was withdrawn: retrying will not help), and
 * err.paused for a 403 that says {"paused": true} (the gold auto-pause: a manager un-pauses).
 */
export async function fetchNext(api, errorText, project, exclude) {
  const res = await api("GET", nextUrl(project, exclude));
  if (res.status === 200) return res.data;
  if (res.status === 204) return null;
  if (res.status === 401 || res.status === 403) {
    const paused = res.status === 403 && !!res.data && res.data.paused === true;
    throw Object.assign(new Error(errorText(res.data, "Not allowed.")), { fatal: true, paused });
  }
  if (res.status === 0) throw new Error("Can't reach the server.");
  throw new Error(errorText(res.data, `The server answered ${res.status}.`));
}

/**
 * Holds at most one item fetched ahead. Its status (for the page and the tests: body[data-prefetch])
 * is "pending", "ready", "none" (nothing else now), "off" (this server ignores ?exclude=, so the
 * page fetches after each submit instead) or "" (the held item was taken).
 */
export class Prefetcher {
  /** fetchNext(exclude) → Promise<item|null>; onStatus(status). */
  constructor({ fetchNext: fetchItem, onStatus = () => {} }) {
    this.fetchItem = fetchItem;
    this.onStatus = onStatus;
    this.item = null;
    this.supported = true;
    this.pending = null;
  }

  /** Keeps an item fetched elsewhere as the next one. */
  hold(item) {
    this.item = item;
    this.onStatus("ready");
  }

  /** The held item (now no longer held), or null. */
  take() {
    const item = this.item;
    if (!item) return null;
    this.item = null;
    this.onStatus("");
    return item;
  }

  /** Waits for a fetch under way, if any. */
  async settle() {
    if (this.pending) await this.pending;
  }

  /**
   * Fetches the item after `forItem`, excluding `exclude` (which holds forItem), unless one is
   * held or under way. currentId() is the item shown when the answer comes.
   */
  async run(forItem, exclude, currentId = () => forItem) {
    if (!this.supported || this.item || this.pending) return;
    this.onStatus("pending");
    const run = (async () => {
      let item;
      try {
        item = await this.fetchItem(exclude);
      } catch {
        return; // try again on the next item
      }
      if (!item) {
        this.onStatus("none");
        return;
      }
      if (item.id === forItem || exclude.includes(item.id)) {
        this.supported = false;
        this.onStatus("off");
        return;
      }
      if (item.id === currentId()) return;
      this.item = item;
      this.onStatus("ready");
    })();
    this.pending = run;
    try {
      await run;
    } finally {
      this.pending = null;
    }
  }
}
