#!/usr/bin/env bash
# The SiLA 2 interoperability checks, with a Python that has `sila2-interop-communication-tester` and
# `sila2` (as .ci/run makes): the feature definitions against the SiLA schema, then the consortium's
# tester's SiLAService tests against `cellos-gateway serve --sila`, over TLS and without, then discovery
# by mDNS.
# Usage: sila/interop/run.sh PYTHON GATEWAY_BINARY
set -euo pipefail
python=$1
gateway=$2
here=$(cd "$(dirname "$0")" && pwd)

"$python" "$here/check_fdl.py" "$here/.."

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start DATA_DIR SILA_PORT WAIT_FOR [FLAG...]: serve on a twin with SiLA; sets $pid once WAIT_FOR is logged.
start() {
    local data=$1 port=$2 ready=$3
    shift 3
    "$gateway" serve --twin --bind "127.0.0.1:$(free_port)" --sila "127.0.0.1:$port" "$@" --data-dir "$data" \
        >"$data/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -q "$ready" "$data/serve.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the SiLA server did not start:"; cat "$data/serve.log"; return 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

for mode in tls insecure; do
    data=$(mktemp -d)
    port=$(free_port)
    flags=()
    roots=()
    if [ "$mode" = insecure ]; then flags=(--sila-insecure); else roots=(--roots-cert-file "$data/sila-ca.pem"); fi
    start "$data" "$port" "SiLA 2:" "${flags[@]}"
    echo "-- the interoperability tester's SiLAService tests, $mode"
    status=0
    (cd "$data" && "$python" -m sila2_interop_communication_tester.test_client --server-address "127.0.0.1:$port" \
        "${roots[@]}" sila_service/) || status=$?
    stop
    rm -rf "$data"
    [ "$status" = 0 ] || { echo "the SiLAService tests failed ($mode)"; exit 1; }
done

echo "-- mDNS: the sila2 discovery browser finds the server by its UUID (serve --announce)"
data=$(mktemp -d)
start "$data" "$(free_port)" "announced by mDNS" --announce
uuid=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["uuid"])' "$data/sila-server.json")
status=0
"$python" "$here/discover.py" "$uuid" "cellos gateway" || status=$?
stop
rm -rf "$data"
case $status in
    0) ;;
    2) echo "NOTE: no multicast on this machine: the mDNS check is SKIPPED" ;;
    *) echo "mDNS discovery found the server with the wrong name"; exit 1 ;;
esac
