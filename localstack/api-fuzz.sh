#!/usr/bin/env bash
# A property-based run over the admin API as infra/openapi.yaml describes it
# (schemathesis): examples, boundary values, random inputs and stateful sequences for
# every operation, sent through the local stack's API Gateway with an admin token. Every
# check runs: no 5xx, answers as documented, valid requests accepted and invalid ones
# refused; the exceptions, each with its reason, are in localstack/schemathesis.toml.
# Seeded, so CI is repeatable; HUB_API_FUZZ_SEED=random explores new inputs. One worker:
# with two, Hypothesis's description of its filters reads source code from two threads
# at once and fails inside Python's parser now and then.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ -f "$HUB_STACK_DIR/stack.env" ] || hub_die "no stack at $HUB_STACK_DIR: start it with localstack/up.sh"
source "$HUB_STACK_DIR/stack.env"

seed=(--seed "${HUB_API_FUZZ_SEED:-20261123}")
[ "${HUB_API_FUZZ_SEED:-}" = random ] && seed=()
token=$("$CARGO_TARGET_DIR/debug/hub-admin" token)
cd "$HUB_STACK_DIR"
"$HUB_VENV_DIR/apifuzz/bin/schemathesis" --config-file "$HUB_ROOT/localstack/schemathesis.toml" \
  run "$HUB_ROOT/infra/openapi.yaml" \
  --url "$HUB_API_URL" --header "Authorization: Bearer $token" \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${HUB_API_FUZZ_EXAMPLES:-25}" "${seed[@]}" --workers 1 --no-color
