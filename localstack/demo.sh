#!/usr/bin/env bash
# The demo command: installs what is missing, builds, starts the local stack, deploys
# template.yaml into it and runs the main job. The stack keeps running afterwards so you
# can look around; localstack/down.sh stops it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HUB_ROOT"

"$HUB_ROOT/localstack/install.sh"
"$HUB_ROOT/localstack/up.sh"
source "$HUB_STACK_DIR/stack.env"
echo
"$CARGO_TARGET_DIR/debug/hub-demo"
echo
hub_log "the stack is still running: source $HUB_STACK_DIR/stack.env to use it; stop it with localstack/down.sh"
