// The manager pages' entry (manage_project.html and manage_import.html load it as a module).

import { $, readJson } from "../lib/dom.js";
import { importPage } from "./import.js";
import { projectPage } from "./project.js";

if ($("manage-project")) projectPage(readJson("manage-config"));
const imports = $("manage-import");
if (imports) importPage(imports);
