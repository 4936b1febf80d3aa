#!/usr/bin/env bash
# Stops exactly what up.sh started, by the PIDs it recorded: console proxy, bridge,
# Mosquitto, emulator.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

pids="$HUB_STACK_DIR/pids"
for name in console bridge mosquitto emulator; do
  file="$pids/$name.pid"
  [ -f "$file" ] || continue
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      hub_log "$name ($pid) ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$file"
done
hub_log "local stack stopped"
