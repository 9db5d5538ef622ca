#!/usr/bin/env node
// Usage: node render.mjs [--engine=kubectl|builtin] INPUT...
// INPUT is a kustomize directory (k8s) or a YAML file (k8s/examples/*.yaml).
// Prints every object as one JSON array on stdout (for the Python tests).
import { load, engine } from "./lib.mjs";

let eng = engine();
const inputs = [];
for (const a of process.argv.slice(2)) {
  if (a.startsWith("--engine=")) eng = a.slice(9);
  else inputs.push(a);
}
if (!inputs.length) {
  console.error("usage: node render.mjs [--engine=kubectl|builtin] INPUT...");
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(load(inputs, eng), null, 1) + "\n");
} catch (e) {
  console.error(`render: ${e.message}`);
  process.exit(1);
}
