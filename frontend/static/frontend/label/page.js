// The labeling loop (docs/frontend.md): show an item, take the expert's answer, send it through the
// outbox, show the next (prefetched) item at once; skip; undo reopens the last answer for a PATCH.
// LabelPage owns the state of the item on screen; the outbox, the prefetcher, the reasons and the
// keyboard selection own theirs (label/*.js). Offsets in values are code points (lib/offsets.js).

import { $, renderMeta } from "../lib/dom.js";
import { codePointIndex } from "../lib/offsets.js";
import { annotateEntry, newKey, skipEntry } from "./outbox.js";
import { renderLabels, renderSpanList, renderSuggestion, renderText } from "./render.js";
import { KeyboardSelection, clearSelection, selectText, selectionOffsets } from "./spans.js";
import { canonical, emptyValue, isComplete, preselectOf, suggestionOf, withLabel, withSpan, withoutSpan } from "./values.js";

const clone = (v) => JSON.parse(JSON.stringify(v));

export class LabelPage {
  /**
   * cfg: the page config (label-config); schema: values.makeSchema(cfg); store: lib/store.js;
   * outbox, prefetcher, reasons: label/*.js; fetchNext(exclude); api, errorText: lib/http.js.
   */
  constructor({ cfg, schema, store, outbox, prefetcher, reasons, fetchNext, api, errorText }) {
    Object.assign(this, { cfg, schema, store, outbox, prefetcher, reasons, fetchNext, api, errorText });
    this.currentKey = `tandem:current:${cfg.user}:${cfg.project}`;
    this.current = null; // the item shown (JSON of /next)
    this.idx = null; // codePointIndex of its text
    this.value = emptyValue(schema);
    this.suggestion = null;
    this.renderedAt = 0;
    this.editing = null; // {item, value, key, annotationId} while undo reopened the last answer
    this.stashed = null; // the item undo displaced; shown again when the edit is done
    this.lastSubmitted = null; // {item, value, key, annotationId}
    this.selection = new KeyboardSelection();
    this.submitT0 = null;
    this.done = cfg.progress ? cfg.progress.done : 0;
    this.left = cfg.progress ? cfg.progress.left : 0;
    this.waitingForSave = false;
    this.keepAlert = false;
  }

  draftKey(itemId) {
    return `tandem:draft:${this.cfg.user}:${itemId}`;
  }

  // ------------------------------------------------------------ messages
  say(text) {
    $("status").textContent = text;
  }

  alert(text, { keep = false } = {}) {
    if (keep) this.keepAlert = true;
    const el = $("alert");
    el.textContent = text;
    el.hidden = !text;
  }

  setState(state) {
    document.body.dataset.state = state;
  }

  updateProgress() {
    const total = this.done + this.left;
    $("progress").max = Math.max(total, 1);
    $("progress").value = this.done;
    $("progress-text").textContent = `${this.done} done · ${Math.max(this.left, 0)} left`;
    document.body.dataset.outbox = String(this.outbox.size);
  }

  syncUndo() {
    $("undo").disabled = !this.lastSubmitted || !!this.editing;
  }

  // ------------------------------------------------------------ the outbox's answers
  /** Called by the outbox after each answer (see Outbox.onSettled). */
  settled(entry, { outcome, reason, status, data }) {
    const mine = this.lastSubmitted && this.lastSubmitted.key === entry.key;
    const name = entry.external_id || entry.item;
    if (outcome === "ok") {
      this.store.del(this.draftKey(entry.item));
      if (mine && data) this.lastSubmitted.annotationId = data.id;
    } else if (reason === "session") {
      // the session ended: keep the answer (same key) and send it once the expert has logged in again
      this.alert("Your session has ended. Log in again (in another tab), then come back: your answers are kept and will be sent.", { keep: true });
    } else if (outcome === "gone") {
      this.store.del(this.draftKey(entry.item));
      this.alert(
        `Item ${name}: ${this.errorText(data, "this item's slots were taken meanwhile")} Your answer was not needed there; moving on.`,
        { keep: true },
      );
      if (mine) this.lastSubmitted = null;
      this.syncUndo();
    } else if (outcome === "error") {
      this.alert(`Item ${name}: ${this.errorText(data, `not saved (HTTP ${status}).`)}`, { keep: true });
    }
  }

  /** Called after each outbox flush: the item held back for an unsaved answer can load now. */
  flushed() {
    if (!this.waitingForSave) return;
    if (!this.outbox.size) {
      this.waitingForSave = false;
      this.loadNext();
    } else {
      this.outbox.scheduleRetry();
    }
  }

  // ------------------------------------------------------------ loading items
  /**
   * /next, excluding the items of unsaved answers: {item} (item null when none is left), or null when
   * it failed. A fatal failure (401/403) is shown with `fatalHint`; any other is retried by loadNext() in 2 s.
   */
  async fetchNextOrRetry(fatalHint) {
    try {
      return { item: await this.fetchNext(this.outbox.itemIds()) };
    } catch (err) {
      if (err.paused) {
        this.showPaused(err.message);
      } else if (err.fatal) {
        this.alert(`${err.message} ${fatalHint}`);
        this.setState("error");
      } else {
        this.say("Can't reach the server; retrying…");
        setTimeout(() => this.loadNext(), 2000);
      }
      return null;
    }
  }

  /**
   * True when the server handed back an item whose answer is still in the outbox (it still leases the
   * item to us because the answer is not saved yet, e.g. offline): the page waits, and flushed() loads on.
   */
  waitIfUnsaved(item, message) {
    if (!item || !this.outbox.itemIds().includes(item.id)) return false;
    this.waitingForSave = true;
    this.say(message);
    this.setState("waiting");
    this.outbox.scheduleRetry();
    return true;
  }

  async loadNext() {
    this.setState("loading");
    this.say("Loading the next item…");
    const got = await this.fetchNextOrRetry("Your session may have ended: reload the page and log in again.");
    if (!got || this.waitIfUnsaved(got.item, "Saving your last answer… (the next item loads once it is saved)")) return;
    if (!got.item) return this.showEmpty();
    this.showItem(got.item);
  }

  showEmpty() {
    this.current = null;
    $("paused").hidden = true;
    $("workspace").hidden = true;
    $("empty").hidden = false;
    this.left = 0;
    this.updateProgress();
    delete document.body.dataset.itemId;
    this.setState("empty");
    this.say(this.outbox.size ? "Nothing left to label; some answers are still being saved." : "Nothing left to label.");
  }

  /** The member is paused (403 with paused: true): say so in words, with the server's reason. */
  showPaused(detail) {
    this.current = null;
    $("workspace").hidden = true;
    $("empty").hidden = true;
    $("paused").hidden = false;
    $("paused-detail").textContent = detail;
    delete document.body.dataset.itemId;
    this.setState("paused");
    this.say("You are paused in this project; a manager can un-pause you.");
  }

  prefetch() {
    if (!this.current || this.editing) return;
    const forItem = this.current.id;
    const exclude = [forItem, ...this.outbox.itemIds(), this.stashed && this.stashed.id];
    return this.prefetcher.run(forItem, exclude, () => (this.current ? this.current.id : null));
  }

  // ------------------------------------------------------------ rendering
  showItem(item, { value = null, editing = null } = {}) {
    const text = item.data.text || "";
    this.current = item;
    this.editing = editing;
    this.idx = codePointIndex(text);
    this.suggestion = suggestionOf(this.schema, item);
    const preselected = !!this.suggestion && preselectOf(item);
    this.selection = new KeyboardSelection(text);
    this.reasons.reset(item);
    const draft = editing ? null : this.store.get(this.draftKey(item.id));
    if (value) this.value = clone(value);
    else if (draft && draft.value) this.value = draft.value;
    else if (preselected) this.value = clone(this.suggestion); // else shown, and nothing is chosen
    else this.value = emptyValue(this.schema);
    if (!editing) this.store.set(this.currentKey, item.id);

    $("empty").hidden = true;
    $("paused").hidden = true;
    $("workspace").hidden = false;
    $("item-id").textContent = `Item ${item.external_id}`;
    $("edit-badge").hidden = !editing;
    this.syncUndo();
    $("skip").disabled = !!editing;
    renderMeta($("meta"), item.data);
    renderSuggestion($("suggestion"), this.schema, item, this.suggestion, preselected);
    this.renderValue();
    $("text").scrollTop = 0;
    $("reasons-toggle").hidden = !item.prediction;
    $("reasons-toggle").setAttribute("aria-pressed", String(this.reasons.on));
    $("reasons-status").textContent = "";
    if (this.reasons.on) this.loadReasons(item.id);
    if (this.keepAlert) this.keepAlert = false;
    else this.alert("");
    this.renderedAt = performance.now();
    document.body.dataset.itemId = String(item.id);
    this.setState(editing ? "editing" : "ready");
    this.updateProgress();
    if (this.submitT0 !== null && !editing) {
      const ms = this.renderedAt - this.submitT0;
      performance.measure("tandem:submit-to-render", { start: this.submitT0, end: this.renderedAt });
      document.body.dataset.lastSubmitToRenderMs = ms.toFixed(2);
      this.submitT0 = null;
    }
    this.say(editing ? `Editing your answer for item ${item.external_id}. Enter saves, Escape cancels.` : `Item ${item.external_id}.`);
    if (!editing) this.prefetch();
  }

  /** The label buttons, the span list and the text, after the value changed. */
  renderValue({ text = true } = {}) {
    const view = { item: this.current, idx: this.idx, value: this.value, suggestion: this.suggestion };
    renderLabels($("labels"), this.schema, view, (name) => this.chooseLabel(name));
    renderSpanList($("spans-list-wrap"), $("spans-list"), this.schema, view, (i) => this.removeSpan(i));
    if (text) this.renderText();
  }

  renderText() {
    const item = this.current;
    renderText($("text"), this.schema, {
      text: item.data.text || "",
      idx: this.idx,
      spans: this.schema.task === "spans" ? this.value.spans : [],
      reasons: this.reasons.ranges(item.id, this.idx),
      reasonsOn: this.reasons.on,
    });
  }

  // ------------------------------------------------------------ reasons (explanations)
  async loadReasons(itemId) {
    const status = $("reasons-status");
    const ready = await this.reasons.load(itemId, {
      say: (text) => (status.textContent = text),
      stillWanted: () => !!this.current && this.current.id === itemId && this.reasons.on,
    });
    if (ready && this.current && this.current.id === itemId) this.renderText();
  }

  toggleReasons() {
    if (!this.current || !this.current.prediction) return;
    const on = this.reasons.toggle();
    $("reasons-toggle").setAttribute("aria-pressed", String(on));
    if (on) this.loadReasons(this.current.id);
    else {
      $("reasons-status").textContent = "";
      this.renderText();
    }
  }

  // ------------------------------------------------------------ editing the value
  changed() {
    if (!this.editing && this.current) this.store.set(this.draftKey(this.current.id), { value: this.value, at: Date.now() });
    this.renderValue({ text: this.schema.task === "spans" });
  }

  chooseLabel(name) {
    if (!this.current) return;
    if (this.schema.task !== "spans") {
      this.value = withLabel(this.schema, this.value, name);
    } else {
      const sel = selectionOffsets($("text"), this.current.data.text || "", this.idx);
      if (!sel) {
        this.say("Select some text first (mouse, or Shift+arrow keys), then press a label's key.");
        return;
      }
      this.value = withSpan(this.value, { ...sel, label: name });
      clearSelection();
      this.selection.collapse();
      this.say(`${name}: characters ${sel.start} to ${sel.end}.`);
    }
    this.changed();
  }

  removeSpan(i) {
    const [value, gone] = withoutSpan(this.value, i);
    if (!gone) return;
    this.value = value;
    this.say(`Removed ${gone.label} (${gone.start}–${gone.end}).`);
    this.changed();
    const chips = $("spans-list").querySelectorAll(".span-chip");
    if (chips.length) chips[Math.min(i, chips.length - 1)].focus();
    else $("text").focus();
  }

  moveSelection(dir, extend) {
    const range = this.selection.step(dir, extend);
    if (!range) return;
    selectText($("text"), range[0], range[1]);
    this.say(`Selected: ${(this.current.data.text || "").slice(range[0], range[1])}`);
  }

  clearSelection() {
    clearSelection();
    this.selection.clear();
  }

  // ------------------------------------------------------------ submit, skip, undo
  async advance(sending) {
    if (this.stashed) {
      const item = this.stashed;
      this.stashed = null;
      this.showItem(item);
      return;
    }
    const next = this.prefetcher.take();
    if (next) {
      this.showItem(next); // at once: the answer goes to the server in the background
      return;
    }
    this.current = null;
    this.setState("loading");
    this.say("Saving…");
    await this.prefetcher.settle();
    if (this.prefetcher.item) return this.advance(sending);
    await sending;
    this.loadNext();
  }

  submit() {
    if (!this.current) return;
    if (!isComplete(this.schema, this.value)) {
      this.say("Choose a label first (its key, or click it).");
      return;
    }
    if (this.editing) return this.submitEdit();
    const item = this.current;
    const value = canonical(this.schema, this.value);
    // whether it is the suggestion served is decided by the server (it recorded what it served)
    const body = { value, lead_time_ms: Math.max(0, Math.round(performance.now() - this.renderedAt)) };
    const entry = annotateEntry(item, body, newKey());
    this.outbox.add(entry);
    this.lastSubmitted = { item, value, key: entry.key, annotationId: null };
    this.done += 1;
    this.left = Math.max(0, this.left - 1);
    this.submitT0 = performance.now();
    this.advance(this.outbox.send(entry));
  }

  skip() {
    if (!this.current || this.editing) return;
    const item = this.current;
    const entry = skipEntry(item, newKey());
    this.outbox.add(entry);
    this.left = Math.max(0, this.left - 1);
    this.submitT0 = performance.now();
    this.say(`Skipped item ${item.external_id}.`);
    this.advance(this.outbox.send(entry));
  }

  undo() {
    if (!this.lastSubmitted || this.editing || !this.current) {
      if (!this.lastSubmitted) this.say("Nothing to undo yet.");
      return;
    }
    this.stashed = this.current;
    const last = this.lastSubmitted;
    this.showItem(last.item, { value: last.value, editing: last });
  }

  /** Leaves the edit: back to the item undo displaced, or the next one. */
  endEdit() {
    this.editing = null;
    const item = this.stashed;
    this.stashed = null;
    if (item) this.showItem(item);
    else this.loadNext();
  }

  cancelEdit() {
    if (this.editing) this.endEdit();
  }

  async submitEdit() {
    const last = this.editing;
    const value = canonical(this.schema, this.value);
    this.say("Saving your change…");
    let id = last.annotationId;
    if (!id) {
      const entry = this.outbox.find(last.key);
      const r = entry ? await this.outbox.send(entry) : null;
      id = last.annotationId || (r && r.data && r.data.id);
      if (!id) {
        this.alert("Your earlier answer is not saved yet (offline?), so it cannot be changed now. Try again in a moment.");
        return;
      }
    }
    const res = await this.api("PATCH", `/api/annotations/${id}/`, { body: { value } });
    if (res.status === 0) {
      this.alert("Can't reach the server to save the change; try again.");
      return;
    }
    if (res.status !== 200) {
      this.alert(this.errorText(res.data, `The change was not saved (HTTP ${res.status}).`));
      return;
    }
    last.value = value;
    last.annotationId = id;
    this.alert("", { keep: true });
    this.say(`Changed your answer for item ${last.item.external_id}.`);
    this.endEdit();
  }

  // ------------------------------------------------------------ help and guidelines
  toggleHelp() {
    const d = $("help");
    if (d.open) d.close();
    else d.showModal();
  }

  toggleGuidelines() {
    const g = $("guidelines");
    if (!g.hidden) g.open = !g.open;
  }

  // ------------------------------------------------------------ start
  async start() {
    this.updateProgress();
    this.outbox.flush(); // answers a previous visit could not send
    this.setState("loading");
    const got = await this.fetchNextOrRetry("Reload the page and log in again.");
    if (!got || this.waitIfUnsaved(got.item, "Saving your last answer…")) return;
    const first = got.item;
    if (!first) return this.showEmpty();
    // After a reload the server may hand back the prefetched lease first: return to the item with a draft.
    const last = this.store.get(this.currentKey);
    if (last && last !== first.id && this.store.get(this.draftKey(last))) {
      try {
        const other = await this.fetchNext([first.id, ...this.outbox.itemIds()]);
        if (other && other.id === last) {
          this.prefetcher.hold(first);
          this.showItem(other);
          return;
        }
      } catch {
        /* show the first one */
      }
    }
    this.showItem(first);
  }
}
