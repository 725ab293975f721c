// The review page's keyboard, as a pure map from a key press to an action (unit-tested).
//   J / ↓ / →  next annotation     K / ↑ / ←  previous     A approve   R reject   C correct
//   / comment   ? help   in correct mode: label keys (or 1–9 for spans), Enter saves, Esc cancels

/**
 * ev: {key, ctrlKey, metaKey, altKey}; ctx: {helpOpen, typing, hasTask, busy, correcting, task,
 * labelKeys (Set of lower-case hotkeys), onOptionButton (the focused element is a correct-mode option)}.
 * Returns {action, arg?, prevent} or null (the key is left alone).
 */
export function reviewKeyAction(ev, ctx) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return null;
  const key = ev.key;
  if (ctx.helpOpen) return null; // the dialog handles Esc itself
  if (ctx.typing) return key === "Escape" ? { action: "leaveField", prevent: false } : null;
  if (key === "?") return { action: "help", prevent: true };
  if (!ctx.hasTask || ctx.busy) return null;
  const lower = key.length === 1 ? key.toLowerCase() : key;

  if (ctx.correcting) {
    if (key === "Escape") return { action: "closeCorrect", prevent: true };
    if (key === "Enter") {
      // Enter on a focused option button of a classification is its own click (it saves that label)
      if (ctx.onOptionButton && ctx.task === "classification") return null;
      return { action: "saveCorrect", prevent: true };
    }
    if (ctx.task === "spans" && /^[1-9]$/.test(key)) return { action: "toggleSpan", arg: Number(key) - 1, prevent: true };
    if (ctx.task !== "spans" && ctx.labelKeys.has(lower)) return { action: "pickLabel", arg: lower, prevent: true };
    return null;
  }

  switch (lower) {
    case "j":
    case "ArrowDown":
    case "ArrowRight":
      return { action: "select", arg: 1, prevent: true };
    case "k":
    case "ArrowUp":
    case "ArrowLeft":
      return { action: "select", arg: -1, prevent: true };
    case "a":
      return { action: "approve", prevent: true };
    case "r":
      return { action: "reject", prevent: true };
    case "c":
      return { action: "openCorrect", prevent: true };
    case "/":
      return { action: "comment", prevent: true };
    default:
      return null;
  }
}
