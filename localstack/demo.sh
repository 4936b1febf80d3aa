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
# Someone to sign in to the console as: an operator with a fresh password each demo.
user="operator-$(date +%H%M%S)"
password="Demo-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 12)-1"
printf '%s\n' "$password" | "$CARGO_TARGET_DIR/debug/hub-admin" user add "$user" \
  --role operator --password-stdin --permanent
echo
hub_log "the stack is still running: source $HUB_STACK_DIR/stack.env to use it; stop it with localstack/down.sh"
hub_log "the console: $HUB_CONSOLE_URL  (sign in as $user, password $password)"
