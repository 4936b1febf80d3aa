#!/usr/bin/env bash
# The stack's emulator: `start` launches it on $HUB_STACK_DIR's state; `restart` stops it
# as an orderly shutdown does (SIGTERM: it saves every service's state, S3 objects are
# already on disk) and starts it again on the same state, which it restores, event source
# mapping positions included. Tests use `restart` to take the emulator away mid-run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

stack="$HUB_STACK_DIR"
pid_file="$stack/pids/emulator.pid"
endpoint="http://127.0.0.1:$HUB_EMULATOR_PORT"

start() {
  # IOT_MTLS_ENABLED=0: its own MQTT listener binds 0.0.0.0; devices use Mosquitto instead.
  # AWS_ENDPOINT_URL: the functions it runs reach the emulator, not AWS.
  (
    cd "$stack"
    exec env GATEWAY_PORT="$HUB_EMULATOR_PORT" BIND_HOST=127.0.0.1 \
      PERSIST_STATE=1 STATE_DIR="$stack/emulator-state" TMPDIR="$stack/tmp" \
      S3_PERSIST=1 S3_DATA_DIR="$stack/emulator-state/s3" \
      IOT_MTLS_ENABLED=0 SFTP_ENABLED=0 AWS_ENDPOINT_URL="$endpoint" \
      "$HUB_VENV_DIR/emulator/bin/python" -m ministack
  ) >>"$stack/logs/emulator.log" 2>&1 &
  echo $! > "$pid_file"
  hub_wait 60 "emulator" curl -sf "$endpoint/_ministack/health" \
    || hub_die "emulator did not start; see $stack/logs/emulator.log"
}

stop() {
  local pid
  pid=$(cat "$pid_file")
  kill -TERM "$pid" 2>/dev/null || return 0
  # Saving a large state takes a while; a kill before it ends would lose it.
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  hub_die "the emulator ($pid) did not stop within 60 s"
}

# The emulator saves where each DynamoDB-stream mapping has read to, but not the stream
# records: after a restart every stream starts empty at position 0 while the mappings
# would resume far past it and deliver nothing until the stream grew that long again.
# Rewinding them to 0 resumes them at the start of the new, empty stream.
rewind_dynamodb_stream_positions() {
  local state="$stack/emulator-state/lambda.json"
  [ -f "$state" ] || return 0
  python3 - "$state" <<'PY'
import json, os, sys
path = sys.argv[1]
state = json.load(open(path))
positions = (state.get("payload") or {}).get("dynamodb_stream_positions") or {}
data = positions.get("data", {})
for key in data:
    data[key] = 0
tmp = path + ".rewind"
json.dump(state, open(tmp, "w"))
os.replace(tmp, path)
PY
}

case "${1:-}" in
  start) start ;;
  restart) stop; rewind_dynamodb_stream_positions; start ;;
  *) hub_die "usage: $0 start|restart" ;;
esac
