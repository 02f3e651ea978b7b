#!/usr/bin/env bash
# Starts Charla as separate processes on this machine: four services and two edges, on
# MySQL and NATS. Ctrl-C stops them all. Assumes MySQL on 127.0.0.1:3306 (root, no
# password) and NATS on 127.0.0.1:4222 unless DATABASE_URL / BUS_URL say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-mysql://root@tcp(127.0.0.1:3306)/charla}"
export BUS_URL="${BUS_URL:-nats://127.0.0.1:4222}"
export CHAT_URL=127.0.0.1:8091 PROFILE_URL=127.0.0.1:8092 NOTIFY_URL=127.0.0.1:8093 PRESENCE_URL=127.0.0.1:8094

if [[ "$DATABASE_URL" == mysql://* ]]; then
  mysql -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS charla CHARACTER SET utf8mb4 COLLATE utf8mb4_bin'
fi

mkdir -p bin
for cmd in chatsvc/cmd/chatsvc profilesvc/cmd/profilesvc notifysvc/cmd/notifysvc presencesvc/cmd/presencesvc edge/cmd/edge; do
  (cd "${cmd%%/*}" && go build -o ../bin/ "./${cmd#*/}")
done

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
RPC_ADDR=127.0.0.1:8092 bin/profilesvc & pids+=($!)
RPC_ADDR=127.0.0.1:8091 bin/chatsvc & pids+=($!)
RPC_ADDR=127.0.0.1:8093 bin/notifysvc & pids+=($!)
RPC_ADDR=127.0.0.1:8094 bin/presencesvc & pids+=($!)
sleep 1
EDGE_ADDR=127.0.0.1:8080 bin/edge & pids+=($!)
EDGE_ADDR=127.0.0.1:8081 bin/edge & pids+=($!)
echo "edges on ws://127.0.0.1:8080/ws and ws://127.0.0.1:8081/ws; Ctrl-C stops everything"
wait
