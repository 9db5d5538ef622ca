// Shared helpers: load Kubernetes objects from a kustomize directory or from
// plain multi-document YAML files.
//
// A kustomize directory is rendered with `kubectl kustomize` (kubectl ships
// kustomize; Debian 12 has no kubectl/kustomize package, but the project's
// machines come with kubectl).  Where kubectl is missing, or with
// HEALTHD_KUSTOMIZE=builtin, a small built-in renderer is used instead: it
// follows only kustomization.yaml's `resources` (files and sub-directories),
// `components` (kind: Component directories, e.g. k8s/monitoring) and
// `namespace`, which is all k8s/ uses, and refuses any other kustomization
// key rather than silently ignoring it.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

// Kinds that take no namespace (kustomize leaves these alone).
const CLUSTER_SCOPED = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
  "PersistentVolume", "StorageClass", "PriorityClass", "Node",
  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
  "APIService", "IngressClass", "RuntimeClass",
]);

// YAML 1.1, as Kubernetes reads manifests: `defaultMode: 0440` is octal 288.
export function parseYamlDocs(text, source) {
  const out = [];
  for (const doc of parseAllDocuments(text, { version: "1.1" })) {
    if (doc.errors.length) {
      throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue; // empty document
    out.push(obj);
  }
  return out;
}

function kubectlPath() {
  for (const dir of (process.env.PATH || "").split(":")) {
    const p = path.join(dir || ".", "kubectl");
    if (existsSync(p)) return p;
  }
  return null;
}

export function engine() {
  const forced = process.env.HEALTHD_KUSTOMIZE;
  if (forced === "builtin" || forced === "kubectl") return forced;
  if (forced) throw new Error(`HEALTHD_KUSTOMIZE=${forced}: use kubectl or builtin`);
  return kubectlPath() ? "kubectl" : "builtin";
}

function kustomizationFile(dir) {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

const BUILTIN_KEYS = new Set(["apiVersion", "kind", "namespace", "resources", "components"]);
const COMPONENT_API = "kustomize.config.k8s.io/v1alpha1";

// Render a kustomization directory.  `accumulated` is given when `dir` is a
// Component named in a parent's `components`: as kustomize does, its
// resources join the parent's objects and its namespace applies to all of
// them.  Order: resources, then components, then namespace.
export function renderBuiltin(dir, accumulated = null) {
  const kfile = kustomizationFile(dir);
  if (!kfile) throw new Error(`${dir}: no kustomization.yaml`);
  const [k] = parseYamlDocs(readFileSync(kfile, "utf8"), kfile);
  for (const key of Object.keys(k)) {
    if (!BUILTIN_KEYS.has(key)) {
      throw new Error(`${kfile}: the built-in renderer does not support "${key}" (install kubectl)`);
    }
  }
  const kind = k.kind ?? "Kustomization";
  if (kind !== "Kustomization" && kind !== "Component") {
    throw new Error(`${kfile}: kind ${kind} is neither Kustomization nor Component`);
  }
  if (kind === "Component" && k.apiVersion !== COMPONENT_API) {
    throw new Error(`${kfile}: a Component's apiVersion is ${COMPONENT_API}`);
  }
  if (accumulated && kind !== "Component") {
    throw new Error(`${kfile}: named in components but its kind is ${kind}, not Component`);
  }
  const objs = accumulated ?? [];
  for (const res of k.resources || []) {
    const p = path.join(dir, res);
    if (statSync(p).isDirectory()) {
      const sub = kustomizationFile(p);
      const [sk] = sub ? parseYamlDocs(readFileSync(sub, "utf8"), sub) : [{}];
      if (sk?.kind === "Component") {
        throw new Error(`${kfile}: ${res} is a Component: list it under components, not resources`);
      }
      objs.push(...renderBuiltin(p));
    } else {
      objs.push(...parseYamlDocs(readFileSync(p, "utf8"), p));
    }
  }
  for (const comp of k.components || []) {
    renderBuiltin(path.join(dir, comp), objs);
  }
  if (k.namespace) {
    for (const o of objs) {
      if (!CLUSTER_SCOPED.has(o.kind)) {
        o.metadata = { ...(o.metadata || {}), namespace: k.namespace };
      }
    }
  }
  return objs;
}

export function renderKubectl(dir) {
  const text = execFileSync(kubectlPath() || "kubectl", ["kustomize", dir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return parseYamlDocs(text, `kubectl kustomize ${dir}`);
}

// Load every object named by `inputs` (kustomize dirs or YAML files).  Each
// object gets a non-enumerable `__source` for messages.
export function load(inputs, eng = engine()) {
  const all = [];
  for (const input of inputs) {
    let objs;
    if (statSync(input).isDirectory()) {
      objs = eng === "kubectl" ? renderKubectl(input) : renderBuiltin(input);
    } else {
      objs = parseYamlDocs(readFileSync(input, "utf8"), input);
    }
    for (const o of objs) {
      Object.defineProperty(o, "__source", { value: input, enumerable: false });
      all.push(o);
    }
  }
  return all;
}

export function describe(o) {
  return `${o.__source ?? "?"}: ${o.apiVersion}/${o.kind} ${o.metadata?.name ?? "(no name)"}`;
}
