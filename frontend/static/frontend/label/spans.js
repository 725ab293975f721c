// Span labeling: the text selection (mouse, or the keyboard's word steps) as code point offsets.
// stepSelection is pure; the rest reads or sets the document's selection when called.

import { trimSelection, wordTokens } from "../lib/offsets.js";

/**
 * The keyboard selection after one step: kb is {anchor, focus} token indices or null (nothing
 * selected yet: the first step selects the first token, or the last when going left); extend keeps
 * the anchor (Shift). n: the number of tokens (> 0).
 */
export function stepSelection(kb, dir, extend, n) {
  if (!kb) {
    const i = dir > 0 ? 0 : n - 1;
    return { anchor: i, focus: i };
  }
  const f = Math.min(n - 1, Math.max(0, kb.focus + dir));
  return extend ? { anchor: kb.anchor, focus: f } : { anchor: f, focus: f };
}

/** [lo, hi] token indices covered by a keyboard selection. */
export const selectedTokens = (kb) => [Math.min(kb.anchor, kb.focus), Math.max(kb.anchor, kb.focus)];

/** The keyboard selection of one item's text: its word tokens and where the selection stands. */
export class KeyboardSelection {
  constructor(text = "") {
    this.text = text;
    this.toks = null;
    this.kb = null;
  }

  tokens() {
    if (!this.toks) this.toks = wordTokens(this.text);
    return this.toks;
  }

  /** Moves (or with extend, grows) the selection by one token; the UTF-16 [start, end) selected, or null. */
  step(dir, extend) {
    const toks = this.tokens();
    if (!toks.length) return null;
    this.kb = stepSelection(this.kb, dir, extend, toks.length);
    const [lo, hi] = selectedTokens(this.kb);
    return [toks[lo][0], toks[hi][1]];
  }

  /** After a span was labeled: the next step starts from where the selection ended. */
  collapse() {
    if (this.kb) this.kb = { anchor: this.kb.focus, focus: this.kb.focus };
  }

  clear() {
    this.kb = null;
  }
}

/** The DOM position of a UTF-16 offset in the text nodes under el. */
export function domPoint(el, u16) {
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  let seen = 0;
  let node = walker.nextNode();
  while (node) {
    const len = node.data.length;
    if (u16 <= seen + len) return [node, u16 - seen];
    seen += len;
    node = walker.nextNode();
  }
  return [el, el.childNodes.length];
}

/** Selects UTF-16 [a, b) of the text rendered in el, and scrolls it into view. */
export function selectText(el, a, b) {
  const [sn, so] = domPoint(el, a);
  const [en, eo] = domPoint(el, b);
  const r = document.createRange();
  r.setStart(sn, so);
  r.setEnd(en, eo);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(r);
  const box = sn.parentElement;
  if (box && box.scrollIntoView) box.scrollIntoView({ block: "nearest" });
}

export function clearSelection() {
  window.getSelection().removeAllRanges();
}

/**
 * The document's selection inside el (which renders `text`) as code point offsets {start, end},
 * whitespace trimmed; null when nothing inside the text is selected. idx: codePointIndex(text).
 */
export function selectionOffsets(el, text, idx) {
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0);
  if (!range.intersectsNode(el)) return null;
  const all = document.createRange();
  all.selectNodeContents(el);
  const offsetOf = (node, off) => {
    const r = document.createRange();
    r.setStart(el, 0);
    r.setEnd(node, off);
    return r.toString().length;
  };
  const a = range.compareBoundaryPoints(Range.START_TO_START, all) <= 0 ? 0 : offsetOf(range.startContainer, range.startOffset);
  const b = range.compareBoundaryPoints(Range.END_TO_END, all) >= 0 ? text.length : offsetOf(range.endContainer, range.endOffset);
  const trimmed = trimSelection(text, a, b);
  if (!trimmed) return null;
  return { start: idx.u16ToCp[trimmed[0]], end: idx.u16ToCp[trimmed[1]] };
}
