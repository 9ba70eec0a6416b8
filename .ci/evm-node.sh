#!/usr/bin/env bash
# Start a local EVM dev node for the `ethereum`-marked tests and print the variable that points them at it.
#
#   eval "$(.ci/evm-node.sh 8545)"      # installs if needed, starts, waits, exports SONATA_DLT_TEST_EVM_RPC
#   pytest tests/ledger -m ethereum
#   kill "$(cat "$SONATA_DLT_EVM_PIDFILE")"
#
# Needs only node (>= 18, for fetch) and npm. The node is Ganache, pinned, installed from the npm registry into a
# cache directory outside the repository (reused by later runs; point CI's cache at it). Ganache is archived
# upstream but runs fine on Node 20, starts in seconds, and mines each transaction immediately with ten unlocked,
# funded accounts, which is what the tests need. stdout carries only `export` lines, so the output can be eval'd;
# progress and errors go to stderr.
#
# Environment: SONATA_DLT_EVM_CACHE (install dir), SONATA_DLT_EVM_PIDFILE (where the pid is written).
set -euo pipefail

GANACHE_VERSION="7.9.2"
CHAIN_ID=1337
port="${1:-8545}"
cache="${SONATA_DLT_EVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sonata-dlt/evm-node}"
pidfile="${SONATA_DLT_EVM_PIDFILE:-$cache/evm-node-$port.pid}"
logfile="$cache/evm-node-$port.log"
url="http://127.0.0.1:$port"

say() { echo "evm-node: $*" >&2; }

if ! [[ "$port" =~ ^[0-9]+$ ]]; then
  say "port must be a number, got '$port'"
  exit 2
fi
command -v node >/dev/null && command -v npm >/dev/null || { say "node and npm are required"; exit 2; }

# Asks the endpoint for its chain id; succeeds only if a JSON-RPC answer comes back.
rpc_answers() {
  node -e '
    fetch(process.argv[1], {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "eth_chainId", params: []})})
      .then((r) => r.json()).then((j) => process.exit(j.result ? 0 : 1)).catch(() => process.exit(1));
  ' "$url"
}

if rpc_answers; then
  say "something already answers JSON-RPC on $url; not starting another node"
  exit 1
fi

mkdir -p "$cache"
bin="$cache/node_modules/.bin/ganache"
installed="$(node -p 'require(process.argv[1]).version' "$cache/node_modules/ganache/package.json" 2>/dev/null || true)"
if [[ "$installed" != "$GANACHE_VERSION" ]]; then
  say "installing ganache@$GANACHE_VERSION into $cache"
  npm install --prefix "$cache" --no-audit --no-fund --no-save --loglevel=error "ganache@$GANACHE_VERSION" >&2
fi

say "starting ganache on $url (chain id $CHAIN_ID, log $logfile)"
nohup "$bin" --host 127.0.0.1 --port "$port" --chain.chainId "$CHAIN_ID" --wallet.deterministic \
  --logging.quiet >"$logfile" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

for _ in $(seq 1 120); do
  if rpc_answers; then
    say "ready (pid $pid, pid file $pidfile)"
    echo "export SONATA_DLT_TEST_EVM_RPC=$url"
    echo "export SONATA_DLT_EVM_PIDFILE=$pidfile"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    say "ganache exited before answering; its log follows"
    cat "$logfile" >&2
    exit 1
  fi
  sleep 0.5
done
say "no JSON-RPC answer on $url after 60s; stopping pid $pid"
kill "$pid" 2>/dev/null || true
exit 1
