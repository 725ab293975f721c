// What each panel says when it has nothing to show: why, and what to do about it.

export const EMPTY = {
  agreement:
    "Fewer than two annotators on any item: agreement needs overlap ≥ 2 (set “annotations per item” to 2 or more in Settings, then label).",
  gold: 'No gold items yet: mark some in Import (a "gold" field or column) or with PATCH /api/items/{id} {"gold": value}.',
  model: "No model version yet: pre-label or train (POST /api/projects/{id}/prelabel or /train).",
  learning: "No trained version yet: the learning curve starts with the first fine-tuned version.",
  live: "No live figures yet: they need an active model version whose suggestions were served.",
  slices: "No slices yet: they need labeled items (fields come from the imported metadata beside text, plus text length).",
  stopping: "No stopping signal yet: it needs at least two model versions to compare.",
  throughput: "No annotations or reviews in this range.",
  annotators: "No one has labeled in this range.",
};

const hasNumber = (x) => typeof x === "number" && Number.isFinite(x);

/** The empty-state message of each panel for these metrics (null: the panel has something to show). */
export function emptyStates(m) {
  const agreement = m.agreement || {};
  const annotators = m.annotators || [];
  const live = m.live || {};
  const slices = m.slices || {};
  const stopping = m.stopping || {};
  const noAgreement =
    !hasNumber(agreement.krippendorff_alpha) &&
    !hasNumber(agreement.fleiss_kappa) &&
    !(agreement.pairwise_cohen_kappa || []).some((p) => hasNumber(p.kappa)) &&
    !(agreement.over_time || []).some((d) => hasNumber(d.krippendorff_alpha));
  return {
    agreement: noAgreement ? EMPTY.agreement : null,
    throughput: (m.throughput || []).length ? null : EMPTY.throughput,
    annotators: annotators.length ? null : EMPTY.annotators,
    gold: annotators.some((a) => (a.gold_answers || 0) > 0) ? null : EMPTY.gold,
    model: (m.model || []).length ? null : EMPTY.model,
    live: live.model_version === null || live.model_version === undefined ? EMPTY.live : null,
    liveGold: live.gold && live.gold.n > 0 ? null : EMPTY.gold,
    learning: (m.learning_curve || []).length ? null : EMPTY.learning,
    slices: Object.values(slices).some((s) => s && (s.rows || []).length) ? null : EMPTY.slices,
    stopping: (stopping.kappa_history || []).length ? null : EMPTY.stopping,
  };
}
