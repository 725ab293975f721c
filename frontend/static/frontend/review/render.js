// Drawing the review page's item and annotations. Every piece of item or annotation content goes in
// with textContent, never as HTML. Span offsets are code points (lib/offsets.js).

import { button, make } from "../lib/dom.js";
import { segments, sliceCodePoints } from "../lib/offsets.js";

/** Text for a value in one line ("sports", "a, b", "PER 0–5, ORG 9–12"). */
export function describe(task, value) {
  if (task === "classification") return value.label;
  if (task === "multilabel") return (value.labels || []).join(", ") || "no labels";
  return (value.spans || []).map((s) => s.label + " " + s.start + "–" + s.end).join(", ") || "no spans";
}

/**
 * The pieces of a text with spans marked, in code points: [{text, spans}] (spans: those covering
 * the piece). Spans past the end of the text are ignored.
 */
export function markedPieces(text, spans) {
  const chars = Array.from(text || "");
  const inside = spans.filter((s) => s.end <= chars.length).map((s) => ({ ...s, a: s.start, b: s.end }));
  return segments(chars.length, inside).map(({ a, b, covering }) => ({ text: chars.slice(a, b).join(""), spans: covering }));
}

export function makeRenderer(config) {
  const labelsByName = new Map(config.labels.map((l) => [l.name, l]));
  const colorOf = (name) => {
    const label = labelsByName.get(name);
    return label && label.color ? label.color : null;
  };

  function chip(name) {
    const c = make("span", "label-chip", name);
    const color = colorOf(name);
    if (color) c.style.setProperty("--label-color", color);
    return c;
  }

  function valueNode(value, text) {
    const box = make("div", "ann-value");
    if (config.taskType === "classification") {
      box.appendChild(chip(value.label));
    } else if (config.taskType === "multilabel") {
      if (!value.labels || value.labels.length === 0) box.appendChild(make("span", "muted", "(no labels)"));
      for (const name of value.labels || []) box.appendChild(chip(name));
    } else {
      const spans = value.spans || [];
      if (spans.length === 0) box.appendChild(make("span", "muted", "(no spans)"));
      const list = make("ul", "span-list");
      for (const s of spans) {
        const li = make("li");
        li.appendChild(chip(s.label));
        li.appendChild(make("q", "span-text", sliceCodePoints(text, s.start, s.end)));
        li.appendChild(make("span", "muted", " " + s.start + "–" + s.end));
        list.appendChild(li);
      }
      box.appendChild(list);
    }
    return box;
  }

  /** The item text, with the given annotation's spans marked (spans projects only). */
  function renderText(el, text, ann) {
    el.textContent = "";
    if (config.taskType !== "spans" || !ann) {
      el.textContent = text;
      return;
    }
    for (const piece of markedPieces(text, ann.value.spans || [])) {
      if (piece.spans.length === 0) {
        el.appendChild(document.createTextNode(piece.text));
        continue;
      }
      const mark = make("mark", piece.spans.length > 1 ? "span-mark nested" : "span-mark", piece.text);
      const color = colorOf(piece.spans[piece.spans.length - 1].label);
      if (color) mark.style.setProperty("--label-color", color);
      mark.title = piece.spans.map((s) => s.label).join(" + ");
      el.appendChild(mark);
    }
  }

  /** One card per annotation; onSelect(i) on click. */
  function renderAnnotations(list, task, selected, onSelect) {
    // a rejected annotation (counts false) is shown but does not vote
    const counting = task.annotations.filter((a) => a.counts !== false).length;
    list.textContent = "";
    task.annotations.forEach((ann, i) => {
      const card = make("div", "ann-card");
      card.id = "ann-" + ann.id;
      card.setAttribute("role", "option");
      card.dataset.index = String(i);
      card.dataset.annotation = String(ann.id);
      const rejected = ann.counts === false;
      if (rejected) card.classList.add("rejected");
      else if (task.disagreement) card.classList.add(ann.agreeing * 2 > counting ? "majority" : "minority");
      const head = make("div", "ann-head");
      head.appendChild(make("strong", "ann-annotator", ann.annotator));
      head.appendChild(make("span", "muted", rejected ? "rejected: out of the vote" : ann.agreeing + " of " + counting + " agree"));
      card.appendChild(head);
      card.appendChild(valueNode(ann.value, task.item.data.text));
      if (ann.review) {
        const said = ann.review.comment ? ": “" + ann.review.comment + "”" : "";
        card.appendChild(make("div", "ann-review", (ann.review.verdict === "reject" ? "Rejected" : "Reviewed") + " by " + ann.review.reviewer + said));
      }
      const when = ann.created_at ? new Date(ann.created_at).toLocaleString() : "";
      card.appendChild(
        make(
          "div",
          "ann-foot muted",
          when +
            (ann.lead_time_ms != null ? " · " + Math.round(ann.lead_time_ms / 100) / 10 + " s" : "") +
            (ann.accepted_suggestion ? " · accepted the suggestion" : ""),
        ),
      );
      card.addEventListener("click", () => onSelect(i));
      list.appendChild(card);
    });
    markSelected(list, task, selected);
  }

  /** Moves the selection among the cards renderAnnotations drew (no redraw: J/K only change this). */
  function markSelected(list, task, selected) {
    for (const card of list.querySelectorAll(".ann-card")) {
      const isSelected = card.dataset.index === String(selected);
      card.setAttribute("aria-selected", isSelected ? "true" : "false");
      card.classList.toggle("selected", isSelected);
    }
    const current = task.annotations[selected];
    if (current) list.setAttribute("aria-activedescendant", "ann-" + current.id);
  }

  /** The options of correct mode: label buttons (onPick(label)), or the spans to keep (onToggle(i)). */
  function renderCorrectOptions(box, c, text, { onPick, onToggle }) {
    box.textContent = "";
    if (config.taskType === "spans") {
      c.spans.forEach((s, i) => {
        const b = button("btn label-option");
        b.setAttribute("aria-pressed", s.keep ? "true" : "false");
        if (i < 9) b.appendChild(make("kbd", null, String(i + 1)));
        b.appendChild(chip(s.label));
        b.appendChild(make("span", null, " “" + sliceCodePoints(text, s.start, s.end) + "”" + (s.keep ? "" : " (dropped)")));
        b.addEventListener("click", () => onToggle(i));
        box.appendChild(b);
      });
      if (c.spans.length === 0) box.appendChild(make("span", "muted", "No spans: saving makes the final value empty."));
      return;
    }
    for (const label of config.labels) {
      const b = button("btn label-option");
      b.dataset.label = label.name;
      if (config.taskType === "multilabel") b.setAttribute("aria-pressed", c.labels.has(label.name) ? "true" : "false");
      if (label.hotkey) b.appendChild(make("kbd", null, label.hotkey.toUpperCase()));
      b.appendChild(chip(label.name));
      b.addEventListener("click", () => onPick(label));
      box.appendChild(b);
    }
  }

  return { renderText, renderAnnotations, markSelected, renderCorrectOptions };
}
