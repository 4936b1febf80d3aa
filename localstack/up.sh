#!/usr/bin/env bash
# Starts the local stack from a fresh state: emulator (seeded with the local CA), the
# template deployed into it, Mosquitto with mutual TLS and ACLs from the deployed IoT
# policy, and the bridge that runs the IoT rules. Loopback only; PIDs in $HUB_STACK_DIR/pids.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

stack="$HUB_STACK_DIR"
pids="$stack/pids"
if [ -d "$pids" ] && ls "$pids"/*.pid >/dev/null 2>&1; then
  hub_log "a stack is already running from $stack; stopping it first"
  "$HUB_ROOT/localstack/down.sh"
fi
for port in "$HUB_EMULATOR_PORT" "$HUB_MQTT_PORT" "$HUB_CONSOLE_PORT"; do
  ! hub_port_open "$port" || hub_die "port $port is in use (set HUB_EMULATOR_PORT / HUB_MQTT_PORT / HUB_CONSOLE_PORT)"
done
rm -rf "$stack"
mkdir -p "$pids" "$stack/emulator-state" "$stack/tmp" "$stack/logs" "$stack/mosquitto"

hub_log "building the console"
(cd "$HUB_ROOT/console" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build) \
  || hub_die "the console did not build"

hub_log "building the workspace (a first build takes ~12 minutes on 2 cores; cargo shows its progress)"
# The same selection as the test command builds, so features unify the same way and
# nothing is compiled twice. Not quiet: on a terminal cargo draws its progress bar
# (crates done of crates to build), elsewhere it prints a line per crate.
cargo build --workspace --all-targets
hub_local="$CARGO_TARGET_DIR/debug/hub-local"

"$hub_local" pki-init --pki-dir "$stack/pki" --seed-file "$stack/emulator-state/iot.json"

endpoint="http://127.0.0.1:$HUB_EMULATOR_PORT"
hub_log "starting the emulator on $endpoint"
"$HUB_ROOT/localstack/emulator.sh" start
curl -sf "$endpoint/_ministack/iot/ca.pem" | cmp -s - "$stack/pki/ca.pem" \
  || hub_die "the emulator is not using the local CA (state seed not loaded)"

export AWS_ENDPOINT_URL="$endpoint"
hub_log "deploying template.yaml as stack $HUB_STACK_NAME"
"$hub_local" deploy --stack-name "$HUB_STACK_NAME" --template "$HUB_ROOT/template.yaml" \
  --parameter Architecture=x86_64 --parameter RawStreamShards=2 \
  --parameter ReportBatchItemFailures=false --parameter RulesCacheSeconds=2 \
  --parameter RegistryCacheSeconds=2 --parameter CredentialSweepMinutes=1 \
  --parameter AllowHttpWebhooks=true --parameter AllowPrivateWebhookAddresses=true \
  --parameter ConsoleUrl="http://127.0.0.1:$HUB_CONSOLE_PORT/" \
  --parameter FirmwareSigningPublicKey="$(cat "$stack/pki/firmware-signing.pub")" \
  --binaries-dir "$CARGO_TARGET_DIR/debug" \
  --outputs-file "$stack/outputs.json"

output() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$stack/outputs.json" "$1"; }
policy=$(output DevicePolicyName)
# The emulator serves every API on its own port, under /_aws/execute-api/{api}/{stage}.
api_url="$endpoint/_aws/execute-api/$(output HubApiId)/\$default"
"$hub_local" mosquitto-config --policy-name "$policy" --pki-dir "$stack/pki" \
  --port "$HUB_MQTT_PORT" --dir "$stack/mosquitto"
hub_log "starting Mosquitto on 127.0.0.1:$HUB_MQTT_PORT"
mosquitto -c "$stack/mosquitto/mosquitto.conf" >"$stack/logs/mosquitto.out" 2>&1 &
echo $! > "$pids/mosquitto.pid"
hub_wait 20 "Mosquitto" hub_port_open "$HUB_MQTT_PORT" \
  || hub_die "Mosquitto did not start; see $stack/mosquitto/mosquitto.log"

hub_log "starting the bridge"
"$hub_local" bridge --mqtt-port "$HUB_MQTT_PORT" --pki-dir "$stack/pki" \
  --mosquitto-pid-file "$pids/mosquitto.pid" --device-policy "$policy" \
  >"$stack/logs/bridge.log" 2>&1 &
echo $! > "$pids/bridge.pid"
hub_wait 30 "bridge" grep -q '"subscribed"' "$stack/logs/bridge.log" \
  || hub_die "the bridge did not subscribe; see $stack/logs/bridge.log"

# The admin API's app clients (one per role) and their secrets, from the emulator's
# Cognito; the CLI uses the admin client by default.
clients=$(python3 - "$stack/outputs.json" "$endpoint" "$AWS_REGION" <<'PY'
import json, sys, urllib.request
outputs, endpoint, region = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
def secret(client_id):
    request = urllib.request.Request(
        endpoint + "/",
        data=json.dumps({"UserPoolId": outputs["AdminUserPoolId"], "ClientId": client_id}).encode(),
        headers={
            "x-amz-target": "AWSCognitoIdentityProviderService.DescribeUserPoolClient",
            "content-type": "application/x-amz-json-1.1",
            "authorization": f"AWS4-HMAC-SHA256 Credential=local/20260101/{region}/cognito-idp/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    return json.load(urllib.request.urlopen(request))["UserPoolClient"]["ClientSecret"]
for role in ("Viewer", "Operator", "Admin"):
    client_id = outputs[role + "ClientId"]
    print(f"export HUB_{role.upper()}_CLIENT_ID={client_id}")
    print(f"export HUB_{role.upper()}_CLIENT_SECRET='{secret(client_id)}'")
PY
) || hub_die "could not read the admin API's client secrets from the emulator"

# The console: its files into its bucket with this stack's config.json, served at a fixed
# local address (the one its sign-in returns to). The browser calls the API on the
# console's own origin, and the socket and the hosted UI on the emulator's.
realtime_url="ws://127.0.0.1:$HUB_EMULATOR_PORT/_aws/execute-api/$(output RealtimeApiId)/live"
"$CARGO_TARGET_DIR/debug/hub-admin" console publish --dist "$HUB_ROOT/console/dist" \
  --bucket "$(output ConsoleBucketName)" --realtime-url "$realtime_url" --auth-url "$endpoint" \
  --client-id "$(output ConsoleClientId)" --console-url "http://127.0.0.1:$HUB_CONSOLE_PORT/" \
  || hub_die "could not publish the console"
hub_log "serving the console on http://127.0.0.1:$HUB_CONSOLE_PORT/"
"$hub_local" console-proxy --port "$HUB_CONSOLE_PORT" --emulator "$endpoint" \
  --api-id "$(output HubApiId)" --distribution-domain "$(output ConsoleDistributionDomain)" \
  >"$stack/logs/console.log" 2>&1 &
echo $! > "$pids/console.pid"
hub_wait 20 "console" curl -sf "http://127.0.0.1:$HUB_CONSOLE_PORT/config.json" \
  || hub_die "the console is not served; see $stack/logs/console.log"

cat > "$stack/stack.env" <<ENV
# Source this file to talk to the local stack (aws CLI, SDKs, tests).
export HUB_STACK_NAME=$HUB_STACK_NAME
export HUB_STACK_DIR=$stack
export HUB_MQTT_HOST=127.0.0.1
export HUB_MQTT_PORT=$HUB_MQTT_PORT
export HUB_API_URL='$api_url'
export HUB_TOKEN_URL=$endpoint/oauth2/token
export HUB_FIRMWARE_SIGNING_KEY=$stack/pki/firmware-signing.pk8
export HUB_ASYNC_FAILURE_QUEUE_URL=$(output AsyncFailureQueueUrl)
export HUB_USER_POOL_ID=$(output AdminUserPoolId)
export HUB_CONSOLE_URL=http://127.0.0.1:$HUB_CONSOLE_PORT/
export HUB_CONSOLE_BUCKET=$(output ConsoleBucketName)
export HUB_CONSOLE_CLIENT_ID=$(output ConsoleClientId)
export HUB_REALTIME_URL=$realtime_url
export HUB_AUTH_URL=$endpoint
$clients
export HUB_CLIENT_ID=\$HUB_ADMIN_CLIENT_ID
export HUB_CLIENT_SECRET=\$HUB_ADMIN_CLIENT_SECRET
export AWS_ENDPOINT_URL=$endpoint
export AWS_REGION=$AWS_REGION
export AWS_DEFAULT_REGION=$AWS_REGION
export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
ENV
hub_log "local stack up in ${SECONDS}s: source $stack/stack.env"
