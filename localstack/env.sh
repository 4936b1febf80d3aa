# Settings shared by the local stack scripts; sourced, not run.
# Every value can be overridden from the environment, so that tests run a second stack
# on other ports beside a developer's demo stack.

HUB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HUB_ROOT
export HUB_STACK_NAME="${HUB_STACK_NAME:-iot-hub}"
export HUB_STACK_DIR="${HUB_STACK_DIR:-$HUB_ROOT/.local/stack}"
export HUB_EMULATOR_PORT="${HUB_EMULATOR_PORT:-4566}"
export HUB_MQTT_PORT="${HUB_MQTT_PORT:-8883}"
# Where the operator console is served locally (its sign-in returns there).
export HUB_CONSOLE_PORT="${HUB_CONSOLE_PORT:-8480}"
export HUB_VENV_DIR="${HUB_VENV_DIR:-$HUB_ROOT/.local/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HUB_ROOT/target}"

# Pinned tool versions: the emulator pins botocore exactly, so it gets a venv of its own.
export HUB_MINISTACK_VERSION="1.5.33"
export HUB_SAM_CLI_VERSION="1.170.0"
export HUB_CFN_LINT_VERSION="1.58.0"
export HUB_SCHEMATHESIS_VERSION="4.32.5"
export HUB_CHECKOV_VERSION="3.3.30"

# What every AWS client of the local stack needs.
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export SAM_CLI_TELEMETRY=0

hub_log() { printf '\033[1m[%s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
hub_die() { hub_log "error: $*"; exit 1; }

# hub_wait SECONDS DESCRIPTION COMMAND...: retry COMMAND until it succeeds.
hub_wait() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  hub_log "$what ready"
}

hub_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
