#!/bin/sh
# Install the pinned npm packages the deployment tests use (kubernetes-models,
# kubernetes-types, typescript, yaml, @kubernetes-models/prometheus-operator)
# into tests/deploy/node_modules, exactly as package-lock.json says.  Run once
# before ctest (CI: from .ci/run).
# Needs node >= 20 and npm; reaches only the npm registry npm is set up for.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node -e 'for (const m of ["kubernetes-models/package.json", "kubernetes-types/package.json", "typescript/package.json", "yaml/package.json", "@kubernetes-models/prometheus-operator/package.json"]) { const p = require("./node_modules/" + m); console.log(p.name + "@" + p.version); }'
