// The labeling page's keyboard: keyAction() maps a key press to an action (pure, unit-tested);
// describeTarget() reads what the key press happened on.
//
//   label hotkeys  choose / toggle / label the selection     Enter  submit
//   S skip   U undo   R reasons   G guidelines   ? help     Esc  cancel the edit, or clear the selection
//   spans:  ← → move by words (Shift: select)   Backspace/Delete remove the focused (or last) span

import { isTyping } from "../lib/dom.js";

/** What the key press happened on, as far as the keyboard map cares. */
export function describeTarget(target) {
  const t = target instanceof Element ? target : null;
  if (!t) return {};
  const chip = t.closest(".span-chip");
  return {
    typing: isTyping(t),
    // a focused control keeps its own Enter (a label button chooses, a link follows), except the
    // submit button and span chips: there Enter submits
    ownEnter: t.matches("button, a, summary") && t.id !== "submit" && !t.classList.contains("span-chip"),
    inControls: !!t.closest("#labels, .actions, #spans-list, details"),
    chip: chip ? Number(chip.dataset.index) : null,
  };
}

/**
 * The action for a key press, or null to leave the key alone.
 * ev: {key, shiftKey, ctrlKey, metaKey, altKey, isComposing, defaultPrevented};
 * target: describeTarget(); ctx: {helpOpen, hasItem, editing, task, hotkeys (Map key -> label), spanCount}.
 * Returns {action, arg?, prevent} — prevent: whether the browser's default is to be stopped.
 */
export function keyAction(ev, target, ctx) {
  if (ev.defaultPrevented || ev.isComposing || ev.ctrlKey || ev.metaKey || ev.altKey) return null;
  if (target.typing) return null;
  const key = ev.key;
  if (ctx.helpOpen) return key === "?" ? { action: "help", prevent: true } : null; // the dialog closes itself on Escape
  if (key === "?") return { action: "help", prevent: true };
  if (!ctx.hasItem) return null;
  if (key === "Enter") return target.ownEnter ? null : { action: "submit", prevent: true };
  const lower = key.length === 1 ? key.toLowerCase() : key;
  if (ctx.hotkeys.has(lower)) return { action: "label", arg: ctx.hotkeys.get(lower), prevent: true };
  if (lower === "s") return { action: "skip", prevent: true };
  if (lower === "u") return { action: "undo", prevent: true };
  if (lower === "r") return { action: "reasons", prevent: true };
  if (lower === "g") return { action: "guidelines", prevent: true };
  if (key === "Escape") return { action: ctx.editing ? "cancelEdit" : "clearSelection", prevent: false };
  if (ctx.task !== "spans") return null;
  if (key === "ArrowRight" || key === "ArrowLeft") {
    if (target.inControls) return null;
    return { action: "move", arg: { dir: key === "ArrowRight" ? 1 : -1, extend: !!ev.shiftKey }, prevent: true };
  }
  if (key === "Backspace" || key === "Delete") {
    if (target.chip !== null && target.chip !== undefined) return { action: "removeSpan", arg: target.chip, prevent: true };
    return ctx.spanCount ? { action: "removeSpan", arg: ctx.spanCount - 1, prevent: true } : { action: "none", prevent: true };
  }
  return null;
}
