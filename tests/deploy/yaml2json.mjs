#!/usr/bin/env node
// Usage: node yaml2json.mjs < FILE.yaml   -> a JSON array of its documents.
// (Python's standard library has no YAML parser; the tests use this one.)
import { readFileSync } from "node:fs";
import { parseYamlDocs } from "./lib.mjs";

try {
  process.stdout.write(JSON.stringify(parseYamlDocs(readFileSync(0, "utf8"), "stdin")) + "\n");
} catch (e) {
  console.error(`yaml2json: ${e.message}`);
  process.exit(1);
}
