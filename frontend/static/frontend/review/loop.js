// The review loop's rules as the page applies them before and after a verdict (pure, unit-tested); the server
// decides the same (annotation/services/reviewing.py) and answers 409 where these would have said no.

/** The annotation to select first: the first one that counts (a rejected one stays on screen, out of the vote). */
export function firstCounting(annotations) {
  const i = annotations.findIndex((a) => a.counts !== false);
  return i < 0 ? 0 : i;
}

/**
 * Why this verdict cannot be sent on the selected annotation, or null when it can: an item awaiting adjudication
 * is decided by a correction only, and an annotation a reviewer rejected no longer counts.
 */
export function verdictBlocked(task, ann, verdict) {
  if (verdict === "correct" || !task || !ann) return null;
  if (task.adjudication) {
    return "This item awaits adjudication: only a correction decides it. Press C to correct it.";
  }
  if (ann.counts === false) {
    return ann.annotator + "'s annotation was rejected already: select another one, or press C to correct the item.";
  }
  return null;
}

/** The status line after a reject: where the item went. */
export function rejectOutcome(name, result) {
  if (result && result.adjudication) {
    return "Rejected item " + name + ": it now awaits adjudication (" + result.rejections + " rejections) and comes back here for a correction.";
  }
  return "Rejected item " + name + ": it goes back to the labeling queue for another annotator.";
}

/** A 409 on a verdict: another reviewer's lease (with its expiry), or the item was decided meanwhile. */
export function conflictText(name, data, timeOf) {
  const held = data && Array.isArray(data.errors) ? data.errors.find((e) => e && e.expires_at) : null;
  if (held) {
    return "Another reviewer (" + held.reviewer + ") holds item " + name + " until " + timeOf(held.expires_at) + "; here is the next one.";
  }
  const field = data && Array.isArray(data.errors) && data.errors[0] ? data.errors[0].field : null;
  if ((field === "verdict" || field === "annotation") && data.detail) return data.detail;
  return "Someone else already decided item " + name + "; here is the next one.";
}

/** The line about the reviewer's lease on the item shown. */
export function leaseText(task, timeOf) {
  if (!task || !task.expires_at) return "";
  return "Held for you until " + timeOf(task.expires_at) + ": no other reviewer is shown this item until then.";
}

/** Why the item awaits adjudication (the project's max_rejections reached, or nobody is left to label it). */
export function adjudicationText(task, maxRejections) {
  const n = task.rejections;
  const times = n + (n === 1 ? " time" : " times");
  const why = n >= maxRejections ? "the project's maximum" : "nobody is left to label it";
  return "Rejected " + times + " (" + why + "): approve and reject are off; press C to correct it.";
}
