// The labeling page's entry (label.html loads it as a module): reads the page config, builds the
// parts (label/*.js over lib/*.js) and wires the DOM events to them.

import { $, readJson, sleep } from "../lib/dom.js";
import { api, errorText } from "../lib/http.js";
import { jsonStore } from "../lib/store.js";
import { describeTarget, keyAction } from "./keys.js";
import { Outbox, entryRequest } from "./outbox.js";
import { LabelPage } from "./page.js";
import { Prefetcher, fetchNext } from "./prefetch.js";
import { Reasons } from "./reasons.js";
import { makeSchema } from "./values.js";

const cfg = readJson("label-config");
const schema = makeSchema(cfg);
const store = jsonStore();
const next = (exclude) => fetchNext(api, errorText, cfg.project, exclude);

let page = null;
const outbox = new Outbox({
  store,
  key: `tandem:outbox:${cfg.user}:${cfg.project}`,
  post: (entry) => api(...entryRequest(entry)),
  onSettled: (entry, result) => page.settled(entry, result),
  onChange: () => page.updateProgress(),
  onFlushed: () => page.flushed(),
});
const prefetcher = new Prefetcher({
  fetchNext: next,
  onStatus: (status) => (document.body.dataset.prefetch = status),
});
const reasons = new Reasons({ api, errorText, sleep });
page = new LabelPage({ cfg, schema, store, outbox, prefetcher, reasons, fetchNext: next, api, errorText });

const actions = {
  help: () => page.toggleHelp(),
  submit: () => page.submit(),
  label: (name) => page.chooseLabel(name),
  skip: () => page.skip(),
  undo: () => page.undo(),
  reasons: () => page.toggleReasons(),
  guidelines: () => page.toggleGuidelines(),
  cancelEdit: () => page.cancelEdit(),
  clearSelection: () => page.clearSelection(),
  move: ({ dir, extend }) => page.moveSelection(dir, extend),
  removeSpan: (i) => page.removeSpan(i),
  none: () => {},
};

document.addEventListener("keydown", (ev) => {
  const act = keyAction(ev, describeTarget(ev.target), {
    helpOpen: $("help").open,
    hasItem: !!page.current,
    editing: !!page.editing,
    task: schema.task,
    hotkeys: schema.hotkeys,
    spanCount: page.value && page.value.spans ? page.value.spans.length : 0,
  });
  if (!act) return;
  if (act.prevent) ev.preventDefault();
  actions[act.action](act.arg);
});

$("submit").addEventListener("click", () => page.submit());
$("skip").addEventListener("click", () => page.skip());
$("undo").addEventListener("click", () => page.undo());
$("reasons-toggle").addEventListener("click", () => page.toggleReasons());
$("help-open").addEventListener("click", () => page.toggleHelp());
$("check-again").addEventListener("click", () => page.loadNext());
$("paused-check-again").addEventListener("click", () => page.loadNext());
window.addEventListener("online", () => outbox.online());

page.start();
