#!/usr/bin/env bash
# Runs flightrec on this machine: the server on its embedded store and the
# agent shipping this node's profiles to it. Ctrl-C stops both, the agent
# first so that its last interval still reaches the server.
set -euo pipefail
bin=${BIN:-bin}
data=${DATA:-./data}
listen=${LISTEN:-127.0.0.1:7070}
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

# Own sessions: a Ctrl-C reaches only this script, which stops them in order.
setsid "$bin/flightrec" server --data "$data" --listen "$listen" &
server=$!
until curl -sf "http://$listen/healthz" >/dev/null; do
	kill -0 "$server" 2>/dev/null || { echo "flightrec server failed to start" >&2; exit 1; }
	sleep 0.2
done
$sudo setsid "$bin/flightrec-agent" run --server "http://$listen" --admin 127.0.0.1:7071 &
agent=$!

stop() {
	trap - INT TERM
	$sudo kill -TERM "$agent" 2>/dev/null || true
	wait "$agent" 2>/dev/null || true
	kill -TERM "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
}
trap stop INT TERM
wait "$server"
