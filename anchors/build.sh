#!/usr/bin/env bash
# Rebuilds anchors/AnchorLog.json from AnchorLog.sol with the solcjs version pinned in package-lock.json.
# Needs only node and npm. node_modules/ stays local and is gitignored; the artifact is committed.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
node compile.js
