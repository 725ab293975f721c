// Reasons: the words that weighed most for the model's suggestion (GET /api/items/{id}/explanation,
// 202 while a worker computes them). R toggles them; the choice holds for the following items.

import { validRange } from "../lib/offsets.js";

export const REASON_DELAYS = [250, 500, 1000, 1500, 2000]; // ≈ 5 s of polling in all

/**
 * Explanation tokens as highlight ranges in UTF-16 units: {a, b, w}, w the weight relative to the
 * strongest (0..1). Tokens outside the text or with bad offsets are dropped. idx: codePointIndex.
 */
export function reasonRanges(tokens, idx) {
  const weight = (t) => Math.max(0, Number(t.weight) || 0);
  const maxW = Math.max(0, ...tokens.map(weight));
  return tokens
    .filter((t) => validRange(t, idx.length))
    .map((t) => ({ a: idx.cpToU16[t.start], b: idx.cpToU16[t.end], w: maxW > 0 ? weight(t) / maxW : 0 }));
}

export class Reasons {
  /** api: lib/http.js's api; sleep(ms) → Promise. */
  constructor({ api, errorText, sleep }) {
    Object.assign(this, { api, errorText, sleep });
    this.cache = new Map(); // item id -> tokens
    this.on = false; // shown for the current item
    this.wanted = true; // the expert's choice: shown for every suggestion by default
  }

  /** Starts an item: reasons are on when wanted and the item has a suggestion. */
  reset(item) {
    this.on = this.wanted && !!item.prediction;
  }

  toggle() {
    this.on = !this.on;
    this.wanted = this.on;
    return this.on;
  }

  /** The tokens to highlight for an item (none while reasons are off or not loaded). */
  tokens(itemId) {
    return this.on ? this.cache.get(itemId) || [] : [];
  }

  /** The highlight ranges of an item's reasons (reasonRanges; none while off). */
  ranges(itemId, idx) {
    return reasonRanges(this.tokens(itemId), idx);
  }

  /**
   * Loads the reasons of an item, polling while they are computed. say(text) reports progress;
   * stillWanted() says whether the page still shows this item with reasons on. Resolves true when
   * the tokens are there to render.
   */
  async load(itemId, { say, stillWanted }) {
    if (this.cache.has(itemId)) return true;
    say("Computing the reasons…");
    for (let attempt = 0; ; attempt++) {
      const res = await this.api("GET", `/api/items/${itemId}/explanation`);
      if (res.status === 0) {
        say("Can't reach the server for the reasons.");
        return false;
      }
      if (!stillWanted()) return false;
      if (res.status === 200 && res.data && Array.isArray(res.data.tokens)) {
        this.cache.set(itemId, res.data.tokens);
        say(`Highlighted: the words that weighed most for “${res.data.label ?? "the suggestion"}”.`);
        return true;
      }
      if (res.status === 404) {
        say("There are no reasons for this item (no model suggestion).");
        return false;
      }
      if (res.status !== 202 || attempt >= REASON_DELAYS.length) {
        say(
          res.status === 202
            ? "The reasons are still being computed; press R again in a moment."
            : this.errorText(res.data, "No reasons available."),
        );
        return false;
      }
      await this.sleep(REASON_DELAYS[attempt]);
    }
  }
}
