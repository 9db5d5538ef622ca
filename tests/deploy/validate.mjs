#!/usr/bin/env node
// Usage: node validate.mjs [--schema] [--types] INPUT...
// INPUT is a kustomize directory (k8s) or a YAML file (k8s/examples/*.yaml).
//
// --schema  every object is constructed as its kubernetes-models class (by
//           apiVersion/kind) and validate()d against the Kubernetes OpenAPI
//           schema: required fields, types, enums, formats.  The Prometheus
//           Operator's kinds (monitoring.coreos.com: ServiceMonitor,
//           PodMonitor, PrometheusRule...) come from
//           @kubernetes-models/prometheus-operator, validated against the
//           operator's CRD schemas.
// --types   kubernetes-models' schemas allow unknown fields, so every object is
//           also written out as a TypeScript object literal typed with the
//           kubernetes-types interface for its kind (for monitoring.coreos.com,
//           the I<Kind> interface of @kubernetes-models/prometheus-operator)
//           and type-checked with `tsc --strict`: TypeScript's excess-property
//           check rejects any unknown or misspelt field at any depth (e.g.
//           `periodSecond`).
// Both by default.  Exit status 0 when every object passes, 1 otherwise.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { load, describe } from "./lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
// Custom resources whose models (classes, schemas and TypeScript interfaces)
// come from a third-party kubernetes-models package, by API group.
const CRD_MODELS = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

function crdPackage(apiVersion) {
  const group = (apiVersion || "").includes("/") ? apiVersion.split("/")[0] : "";
  return CRD_MODELS[group] ?? null;
}

// The module of an object's model class: kubernetes-models/apps/v1/Deployment,
// @kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.
function modelModule(o) {
  const pkg = crdPackage(o.apiVersion) ?? "kubernetes-models";
  return `${pkg}/${o.apiVersion}/${o.kind}`;
}

async function schemaCheck(objs) {
  let failures = 0;
  for (const o of objs) {
    if (!o.apiVersion || !o.kind) {
      console.error(`FAIL ${describe(o)}: no apiVersion/kind`);
      failures++;
      continue;
    }
    let cls;
    try {
      const mod = await import(modelModule(o));
      cls = mod[o.kind];
    } catch {
      cls = undefined;
    }
    if (!cls) {
      console.error(`FAIL ${describe(o)}: kubernetes-models has no ${o.apiVersion} ${o.kind} (${modelModule(o)})`);
      failures++;
      continue;
    }
    try {
      new cls(o).validate();
      console.log(`ok   schema ${describe(o)}`);
    } catch (e) {
      const details = (e.errors || []).map((x) => `\n       ${x.instancePath || "/"} ${x.message}`).join("");
      console.error(`FAIL schema ${describe(o)}: ${e.message}${details}`);
      failures++;
    }
  }
  return failures;
}

// "apps/v1" -> "apps/v1", "v1" -> "core/v1", "networking.k8s.io/v1" -> "networking/v1",
// "rbac.authorization.k8s.io/v1" -> "rbac/v1": kubernetes-types' module layout.
function typesModule(apiVersion) {
  const parts = apiVersion.split("/");
  if (parts.length === 1) return `core/${parts[0]}`;
  return `${parts[0].split(".")[0]}/${parts[1]}`;
}

function typeCheck(objs) {
  const tsc = path.join(HERE, "node_modules", "typescript", "bin", "tsc");
  const typesDir = path.join(HERE, "node_modules", "kubernetes-types");
  if (!existsSync(tsc) || !existsSync(typesDir)) {
    console.error(`FAIL types: ${HERE}/node_modules is incomplete: run tests/deploy/setup.sh`);
    return 1;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "healthd-k8s-types-"));
  try {
    const imports = new Map();
    const body = [];
    const ranges = []; // [firstLine, lastLine, description]
    objs.forEach((o, i) => {
      // kubernetes-types/apps/v1 exports Deployment; a CRD model's module
      // (one per kind) exports the interface I<Kind>.
      const crd = crdPackage(o.apiVersion);
      const mod = crd ? modelModule(o) : `kubernetes-types/${typesModule(o.apiVersion || "")}`;
      const type = crd ? `I${o.kind}` : o.kind;
      if (!imports.has(mod)) imports.set(mod, `m${imports.size}`);
      const ns = imports.get(mod);
      const literal = JSON.stringify(o, null, 2);
      body.push({ text: `// ${describe(o)}\nexport const o${i}: ${ns}.${type} = ${literal};\n`, desc: describe(o) });
    });
    let text = "";
    for (const [mod, ns] of imports) text += `import type * as ${ns} from "${mod}";\n`;
    let line = text.split("\n").length;
    for (const b of body) {
      const n = b.text.split("\n").length - 1;
      ranges.push([line, line + n - 1, b.desc]);
      line += n;
      text += b.text;
    }
    writeFileSync(path.join(dir, "manifests.ts"), text);
    writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "ES2020",
        module: "commonjs",
        moduleResolution: "node",
        types: [],
        baseUrl: ".",
        paths: {
          "kubernetes-types/*": [`${typesDir}/*`],
          "@kubernetes-models/*": [`${HERE}/node_modules/@kubernetes-models/*`],
        },
      },
      files: ["manifests.ts"],
    }, null, 2));
    try {
      execFileSync(process.execPath, [tsc, "-p", dir, "--pretty", "false"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      const out = `${e.stdout || ""}${e.stderr || ""}`.trim();
      for (const l of out.split("\n")) {
        const m = /manifests\.ts\((\d+),\d+\)/.exec(l);
        const r = m && ranges.find(([a, b]) => +m[1] >= a && +m[1] <= b);
        console.error(`FAIL types ${r ? r[2] : ""}: ${l.replace(/^.*?manifests\.ts/, "manifests.ts")}`);
      }
      return 1;
    }
    for (const r of ranges) console.log(`ok   types ${r[2]}`);
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
let doSchema = args.includes("--schema");
let doTypes = args.includes("--types");
if (!doSchema && !doTypes) doSchema = doTypes = true;
const inputs = args.filter((a) => !a.startsWith("--"));
if (!inputs.length) {
  console.error("usage: node validate.mjs [--schema] [--types] INPUT...");
  process.exit(2);
}
let objs;
try {
  objs = load(inputs);
} catch (e) {
  console.error(`FAIL render: ${e.message}`);
  process.exit(1);
}
if (!objs.length) {
  console.error("FAIL: no objects");
  process.exit(1);
}
let failures = 0;
if (doSchema) failures += await schemaCheck(objs);
if (doTypes) failures += typeCheck(objs);
console.log(failures ? `validate: ${failures} failure(s)` : `validate: ${objs.length} objects ok`);
process.exit(failures ? 1 : 0);
