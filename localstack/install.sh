#!/usr/bin/env bash
# Installs what the local stack and the checks need, from the package registries only:
# Mosquitto (Debian), ministack in its own venv, SAM CLI and cfn-lint in another,
# schemathesis in a third.
# Idempotent: a second run checks versions and returns in about a second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Chromium: the browser the console's end-to-end tests drive (Playwright, no browser
# download of its own). Node.js and npm build the console.
if ! command -v mosquitto >/dev/null || ! command -v curl >/dev/null \
  || ! command -v chromium >/dev/null || ! command -v npm >/dev/null; then
  hub_log "installing mosquitto, curl, chromium and npm from apt (where missing)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    mosquitto curl ca-certificates chromium \
    $(command -v npm >/dev/null || echo nodejs npm) >/dev/null
fi
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || hub_die "the console needs Node.js 20 or newer (node --version: $(node --version))"

# venv NAME MARKER PACKAGES...: a venv with exactly these pinned packages.
venv() {
  local name=$1 marker=$2; shift 2
  local dir="$HUB_VENV_DIR/$name"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$marker" ]; then
    return
  fi
  hub_log "installing $* into $dir"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$marker" > "$dir/.installed"
}

venv emulator "ministack==$HUB_MINISTACK_VERSION" "ministack[full]==$HUB_MINISTACK_VERSION"
venv tools "sam=$HUB_SAM_CLI_VERSION cfn-lint=$HUB_CFN_LINT_VERSION" \
  "aws-sam-cli==$HUB_SAM_CLI_VERSION" "cfn-lint==$HUB_CFN_LINT_VERSION"

# The API fuzzer (schemathesis) pins its own dependencies too.
venv apifuzz "schemathesis=$HUB_SCHEMATHESIS_VERSION" "schemathesis==$HUB_SCHEMATHESIS_VERSION"

# The template's security scanner, in a venv of its own for the same reason.
venv checkov "checkov=$HUB_CHECKOV_VERSION" "checkov==$HUB_CHECKOV_VERSION"

command -v cargo >/dev/null || hub_die "cargo is required (rustup.rs)"
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
hub_log "tools installed"
