// The date-range filter: ?since=&until= (ISO dates, UTC, whole days) from the page's address to the API's.

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** {since, until} from a query string; anything that is not an ISO date is dropped. */
export function rangeFrom(search) {
  const params = new URLSearchParams(search || "");
  const pick = (name) => {
    const v = (params.get(name) || "").trim();
    return ISO_DATE.test(v) ? v : "";
  };
  return { since: pick("since"), until: pick("until") };
}

/** The metrics URL of a project for a range (only the ends that are set). */
export function metricsUrl(project, range) {
  const params = new URLSearchParams();
  if (range.since) params.set("since", range.since);
  if (range.until) params.set("until", range.until);
  const qs = params.toString();
  return `/api/projects/${project}/metrics${qs ? `?${qs}` : ""}`;
}

/** How the range reads in the page's status line. */
export function rangeText(range) {
  if (range.since && range.until) return `from ${range.since} to ${range.until}`;
  if (range.since) return `from ${range.since} on`;
  if (range.until) return `up to ${range.until}`;
  return "the whole project";
}
