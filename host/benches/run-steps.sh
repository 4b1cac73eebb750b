#!/usr/bin/env bash
# The time of one step of a `copper-wasm run`, as a user runs it: the whole
# command on a list of N `testkit/echo` steps less a 10-step run (so that the
# start cancels), median of 3 each, on mosquitto as installed and with
# `set_tcp_nodelay true`, with the bus's relay (the default) and without it
# (COPPER_MQTT_QUICKACK=0), and on the embedded broker.
#
#   cargo build --release && host/benches/run-steps.sh [N]
#
# mosquitto must be installed (./test.sh installs it). N is 1000 by default;
# the slow row (mosquitto as installed, no relay) takes N/10 steps.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
copper="$target/release/copper-wasm"
testkit="$target/plugins/wasm32-wasip2/wasm/copper_testkit.wasm"
[ -x "$copper" ] && [ -f "$testkit" ] || { echo "build first: cargo build --release" >&2; exit 2; }
n="${1:-1000}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain=$(port); tuned=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$plain" > plain.conf
printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n' "$tuned" > tuned.conf
mosquitto -c plain.conf > plain.log 2>&1 &
mosquitto -c tuned.conf > tuned.log 2>&1 &
sleep 0.5
steps() { for _ in $(seq "$1"); do echo "- action: testkit/echo"; done > "w$1.yaml"; }
steps "$n"; steps $((n / 10)); steps 10

micros() { local s e; s=$(date +%s%N); "$@" > /dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000)); }
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
row() { # name steps broker-args env...
  local name=$1 big=$2 broker=$3; shift 3
  local a=() b=()
  for _ in 1 2 3; do
    a+=("$(micros env "$@" "$copper" run "w$big.yaml" --component "$testkit" $broker)")
    b+=("$(micros env "$@" "$copper" run w10.yaml --component "$testkit" $broker)")
  done
  awk -v name="$name" -v n="$big" -v big="$(median "${a[@]}")" -v small="$(median "${b[@]}")" \
    'BEGIN { printf "%-50s %8.3f ms/step  (%d steps %.0f ms, 10 steps %.0f ms)\n", name, (big - small) / (n - 10) / 1000, n, big / 1000, small / 1000 }'
}
row "mosquitto as installed, relay (default)" "$n" "--broker mqtt://127.0.0.1:$plain" X=1
row "mosquitto as installed, COPPER_MQTT_QUICKACK=0" $((n / 10)) "--broker mqtt://127.0.0.1:$plain" COPPER_MQTT_QUICKACK=0
row "mosquitto set_tcp_nodelay, relay (default)" "$n" "--broker mqtt://127.0.0.1:$tuned" X=1
row "mosquitto set_tcp_nodelay, COPPER_MQTT_QUICKACK=0" "$n" "--broker mqtt://127.0.0.1:$tuned" COPPER_MQTT_QUICKACK=0
row "embedded broker (the reference: no TCP)" "$n" "" X=1
