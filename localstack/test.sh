#!/usr/bin/env bash
# The test command: installs what the checks need, lints, builds, runs the unit tests,
# starts a local stack of its own (its own ports and state directory, so a running demo
# stack is left alone), runs the end-to-end tests against it, and stops it again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HUB_ROOT"

export HUB_STACK_NAME=iot-hub-test
export HUB_STACK_DIR="$HUB_ROOT/.local/test-stack"
export HUB_EMULATOR_PORT="${HUB_TEST_EMULATOR_PORT:-4610}"
export HUB_MQTT_PORT="${HUB_TEST_MQTT_PORT:-18883}"
export HUB_CONSOLE_PORT="${HUB_TEST_CONSOLE_PORT:-18480}"

timings=()
step() {
  local name=$1; shift
  local started=$SECONDS
  hub_log "== $name"
  "$@"
  timings+=("$(printf '%-22s %4ss' "$name" $((SECONDS - started)))")
}

step "install" "$HUB_ROOT/localstack/install.sh"
step "format" cargo fmt --all -- --check
step "template lint" bash -c '
  "$HUB_VENV_DIR/tools/bin/cfn-lint" template.yaml &&
  "$HUB_VENV_DIR/tools/bin/sam" validate --lint --template template.yaml'
# Every failed check is a failure; a deliberate exception is a skip on its resource in the
# template, with its reason. --skip-download: the scan runs offline.
step "template scan" "$HUB_VENV_DIR/checkov/bin/checkov" -f template.yaml \
  --framework cloudformation --compact --quiet --skip-download
step "build" cargo build --workspace --all-targets
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
# Every cargo invocation selects the whole workspace: selecting single packages changes
# feature unification and would rebuild the AWS SDK crates a second and third time.
step "unit tests" cargo test --workspace --lib --bins
step "fuzz (20 s a target)" "$HUB_ROOT/shared/telemetry/fuzz/run.sh" 20

trap '"$HUB_ROOT/localstack/down.sh"' EXIT
step "local stack up" "$HUB_ROOT/localstack/up.sh"
step "integration tests" cargo test --workspace --test '*'
# The console in Debian's Chromium against the same stack; screenshots of every page
# stay in console/test-results/.
step "browser tests" bash -c 'source "$HUB_STACK_DIR/stack.env" && cd console && npx playwright test'
step "api fuzz (schemathesis)" "$HUB_ROOT/localstack/api-fuzz.sh"
# And once with a seed of its own, printed at the end, so every run explores new inputs
# and a failure can be replayed with HUB_API_FUZZ_SEED=<seed>.
step "api fuzz (random seed)" env HUB_API_FUZZ_SEED=random "$HUB_ROOT/localstack/api-fuzz.sh"

hub_log "all checks passed in ${SECONDS}s"
printf '  %s\n' "${timings[@]}" >&2
