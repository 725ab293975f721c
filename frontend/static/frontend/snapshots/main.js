// The snapshot page's entry (snapshots.html loads it as a module).

import { $, readJson } from "../lib/dom.js";
import { snapshotsPage } from "./page.js";

const root = $("snapshots-page");
if (root) snapshotsPage(root, readJson("snapshots-config"));
