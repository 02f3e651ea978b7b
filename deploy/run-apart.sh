#!/usr/bin/env bash
# Starts Charla as separate processes on this machine: four services and two edges, on
# MySQL and NATS, and waits until each answers /ready. Ctrl-C stops them all; so does any
# one of them exiting, with a message naming it.
#
#   DATABASE_URL  default mysql://root@tcp(127.0.0.1:3306)/charla; the database it names is
#                 created if absent (needs the mysql client), or sqlite://PATH
#   BUS_URL       default nats://127.0.0.1:4222
#   READY_TIMEOUT seconds to wait for each /ready (default 60)
# Logs go to stderr, prefixed by nothing: each line carries its component.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-mysql://root@tcp(127.0.0.1:3306)/charla}"
export BUS_URL="${BUS_URL:-nats://127.0.0.1:4222}"
export CHAT_URL=127.0.0.1:8091 PROFILE_URL=127.0.0.1:8092 NOTIFY_URL=127.0.0.1:8093 PRESENCE_URL=127.0.0.1:8094
READY_TIMEOUT="${READY_TIMEOUT:-60}"

say() { printf 'run-apart: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# create_mysql_database makes sure the database DATABASE_URL names exists.
# mysql://user[:password]@tcp(host[:port])/database[?params]
create_mysql_database() {
  local re='^mysql://([^:@]*)(:([^@]*))?@tcp\(([^:)]+)(:([0-9]+))?\)/([^?]+)'
  [[ "$DATABASE_URL" =~ $re ]] ||
    die "DATABASE_URL=${DATABASE_URL%%:*}://...: want mysql://user[:password]@tcp(host[:port])/database"
  local user="${BASH_REMATCH[1]}" password="${BASH_REMATCH[3]}" host="${BASH_REMATCH[4]}"
  local port="${BASH_REMATCH[6]:-3306}" db="${BASH_REMATCH[7]}"
  command -v mysql >/dev/null || die "the mysql client is needed to create database $db (or create it yourself)"
  say "creating database $db on $host:$port if absent"
  MYSQL_PWD="$password" mysql -h"$host" -P"$port" -u"$user" \
    -e "CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" ||
    die "cannot create database $db on $host:$port as $user (is MySQL up? is DATABASE_URL right?)"
}

case "$DATABASE_URL" in
  mysql://*) create_mysql_database ;;
  sqlite://*) mkdir -p "$(dirname "${DATABASE_URL#sqlite://}")" ;;
  *) die "DATABASE_URL: want mysql://... or sqlite://PATH" ;;
esac

mkdir -p bin
say "building the binaries into bin/"
for main in chatsvc/cmd/chatsvc profilesvc/cmd/profilesvc notifysvc/cmd/notifysvc presencesvc/cmd/presencesvc edge/cmd/edge; do
  (cd "${main%%/*}" && go build -o ../bin/ "./${main#*/}") || die "go build ./$main failed"
done

declare -A names=() # pid -> process name
stop_all() {
  local pids=("${!names[@]}")
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'say "stopping"; stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

# start NAME ADDR-VARIABLE ADDR BINARY: starts one process in the background.
start() {
  local name=$1 var=$2 addr=$3 bin=$4
  env "$var=$addr" "bin/$bin" &
  names[$!]="$name ($addr)"
}

# alive fails with a message naming the first process that has exited.
alive() {
  local pid
  for pid in "${!names[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      local code=0
      wait "$pid" || code=$?
      die "${names[$pid]} exited with status $code before it was ready; its log is above"
    fi
  done
}

# ready waits until GET http://ADDR/ready answers 200.
ready() {
  local name=$1 addr=$2 deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null "http://$addr/ready" 2>/dev/null; do
    alive
    ((SECONDS < deadline)) || die "$name is not ready after ${READY_TIMEOUT}s: $(curl -sS "http://$addr/ready" 2>&1)"
    sleep 0.2
  done
  say "$name ready on $addr"
}

start profile RPC_ADDR 127.0.0.1:8092 profilesvc
start chat RPC_ADDR 127.0.0.1:8091 chatsvc
start notify RPC_ADDR 127.0.0.1:8093 notifysvc
start presence RPC_ADDR 127.0.0.1:8094 presencesvc
ready profile 127.0.0.1:8092
ready chat 127.0.0.1:8091
ready notify 127.0.0.1:8093
ready presence 127.0.0.1:8094
start edge-1 EDGE_ADDR 127.0.0.1:8080 edge
start edge-2 EDGE_ADDR 127.0.0.1:8081 edge
ready edge-1 127.0.0.1:8080
ready edge-2 127.0.0.1:8081

say "edges on ws://127.0.0.1:8080/ws and ws://127.0.0.1:8081/ws; Ctrl-C stops everything"
code=0
exited=
wait -n -p exited || code=$?
die "${names[$exited]:-a process} exited with status $code; stopping the others"
