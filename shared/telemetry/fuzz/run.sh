#!/usr/bin/env bash
# Fuzzes hub-telemetry's parsers with cargo-fuzz (libFuzzer) on the STABLE toolchain.
#
#   shared/telemetry/fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 30); targets default to all of them (payload raw_record).
# Stable works because the targets are built with `-s none` (no sanitizer): AddressSanitizer
# needs the nightly-only `-Zsanitizer`. Safe Rust needs no ASan to find panics, overflows
# (debug assertions and overflow checks are on) or hangs; set FUZZ_SANITIZER=address and
# use `cargo +nightly` (FUZZ_TOOLCHAIN=+nightly) to get it anyway.
#
# Everything generated goes under $repo/target/fuzz (its own target dir, so it never waits
# on the main target/ lock): the working corpus (seeded from seeds/<target>/) in
# corpus/<target>/, crashes in artifacts/<target>/. Exits non-zero if any target fails.
# FUZZ_ARGS adds libFuzzer flags, e.g. FUZZ_ARGS="-fork=1 -ignore_crashes=1" to keep going
# past a known crash and collect every distinct one.
set -euo pipefail

seconds="${1:-30}"
shift || true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(payload raw_record)
fi
toolchain="${FUZZ_TOOLCHAIN:-}"
sanitizer="${FUZZ_SANITIZER:-none}"
out="$repo/target/fuzz"
export CARGO_TARGET_DIR="$out"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$here"
echo "==> building fuzz targets (sanitizer: $sanitizer) into $out"
start=$(date +%s)
# shellcheck disable=SC2086 # $toolchain is empty or one word such as +nightly
cargo $toolchain fuzz build -s "$sanitizer"
echo "==> built in $(($(date +%s) - start)) s"

failed=()
for target in "${targets[@]}"; do
    corpus="$out/corpus/$target"
    artifacts="$out/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$here/seeds/$target" ]; then
        for seed in "$here/seeds/$target"/*; do
            [ -e "$corpus/$(basename "$seed")" ] || cp "$seed" "$corpus/"
        done
    fi
    echo "==> fuzzing $target for ${seconds}s (corpus $corpus)"
    # shellcheck disable=SC2086
    if cargo $toolchain fuzz run -s "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" \
        -dict="$here/payload.dict" \
        -artifact_prefix="$artifacts/" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        ${FUZZ_ARGS:-}; then
        echo "==> $target: no failures in ${seconds}s"
    else
        echo "==> $target: FAILED; reproducer(s) in $artifacts/" >&2
        echo "    reproduce: (cd $here && CARGO_TARGET_DIR=$out cargo fuzz run -s $sanitizer $target <file>)" >&2
        echo "    minimize:  (cd $here && CARGO_TARGET_DIR=$out cargo fuzz tmin -s $sanitizer $target <file>)" >&2
        failed+=("$target")
    fi
    # cargo fuzz always creates fuzz/artifacts/<target>; ours go under target/ instead.
    rmdir "$here/artifacts/$target" "$here/artifacts" 2>/dev/null || true
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "==> failing targets: ${failed[*]}" >&2
    exit 1
fi
