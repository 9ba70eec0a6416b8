#!/usr/bin/env bash
# Start our server (demo mode, temp SQLite database and data dir, a free 127.0.0.1 port), run the conformance
# suite with our specs and with MEF's published ones, stop the server. Exit status: the suite's (0 = no failure).
#   CONFORMANCE_MAX_EXAMPLES  schemathesis examples per operation (default 10, keeps CI within a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
MEF="$REPO/../shared/reference/sonata"
PY="$REPO/.venv/bin/python"
MAX_EXAMPLES=${CONFORMANCE_MAX_EXAMPLES:-10}

work=$(mktemp -d)
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$REPO/.venv/bin/sonata-dlt" serve --demo --host 127.0.0.1 --port "$port" \
  --database-url "sqlite:///$work/sonata.sqlite" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  if "$PY" -c "import sys, httpx; sys.exit(httpx.get('http://127.0.0.1:$port/healthz').status_code != 200)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "conformance: the server exited"; cat "$work/server.log"; exit 1
  fi
  sleep 0.5
done

specs=()
for name in productOrderManagement productInventoryManagement customerBillManagement; do
  [ -f "openapi/$name.api.yaml" ] && specs+=(--spec "openapi/$name.api.yaml")
done
mef=()
for name in productOrderManagement productInventoryManagement billingManagement; do
  [ -f "$MEF/$name.api.yaml" ] && mef+=(--spec "$MEF/$name.api.yaml")
done

status=0
echo "== conformance: our specs"
"$PY" -m conformance --url "http://127.0.0.1:$port" --token demo-buyer-token --seller-token demo-seller-token \
  --max-examples "$MAX_EXAMPLES" "${specs[@]}" || status=1
echo "== conformance: MEF's published specs (Grace)"
"$PY" -m conformance --url "http://127.0.0.1:$port" --token demo-buyer-token --seller-token demo-seller-token \
  --max-examples "$MAX_EXAMPLES" "${mef[@]}" || status=1
exit $status
