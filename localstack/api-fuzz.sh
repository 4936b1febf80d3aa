#!/usr/bin/env bash
# A property-based run over the admin API as infra/openapi.yaml describes it
# (schemathesis): examples, boundary values and random inputs for every operation, sent
# through the local stack's API Gateway with an admin token. It fails on any 5xx answer.
# Seeded, so CI is repeatable; HUB_API_FUZZ_SEED=random explores new inputs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ -f "$HUB_STACK_DIR/stack.env" ] || hub_die "no stack at $HUB_STACK_DIR: start it with localstack/up.sh"
source "$HUB_STACK_DIR/stack.env"

seed=(--seed "${HUB_API_FUZZ_SEED:-20261123}")
[ "${HUB_API_FUZZ_SEED:-}" = random ] && seed=()
token=$("$CARGO_TARGET_DIR/debug/hub-admin" token)
cd "$HUB_STACK_DIR"
"$HUB_VENV_DIR/apifuzz/bin/schemathesis" run "$HUB_ROOT/infra/openapi.yaml" \
  --url "$HUB_API_URL" --header "Authorization: Bearer $token" \
  --checks not_a_server_error --phases examples,coverage,fuzzing \
  --max-examples "${HUB_API_FUZZ_EXAMPLES:-25}" "${seed[@]}" --workers 2 --no-color
