#!/usr/bin/env bash
# Runs the fuzz targets one after another, each for FUZZ_SECONDS (default 600),
# and prints per target: executions, time, corpus size and crashes.
#
#   fuzz/run.sh                      # every target
#   fuzz/run.sh workflow protocol    # some of them
#   FUZZ_SECONDS=60 fuzz/run.sh expression
#   FUZZ_NO_BUILD=1 fuzz/run.sh      # the binaries as last built
#   fuzz/run.sh minimize workflow fuzz/artifacts/workflow/crash-…   # shrink a crash
#
# Every cargo and fuzzer process runs under `nice -n 19`, one fuzzer at a time
# (libFuzzer's fork mode with one job: a crash is saved under artifacts/<target>/
# and the run goes on until its time is up). The build folder is
# CARGO_TARGET_DIR (default /var/tmp/copper-fuzz-target). Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`); no sanitizer is used (`-s none`: the code
# is safe Rust), so the pinned stable toolchain of the repository builds it.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$FUZZ_DIR")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-600}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/copper-fuzz-target}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$CARGO_TARGET_DIR/$TRIPLE/release"
ALL_TARGETS=(workflow services_file expression protocol fetcher_paths markdown)

build() {
    (cd "$FUZZ_DIR" && nice -n 19 cargo fuzz build -s none --debug-assertions --codegen-units 16)
}

# Per-target libFuzzer options: longer inputs where whole files are the point.
max_len() {
    case "$1" in
        markdown) echo 16384 ;;
        workflow | services_file) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

# Copies seed files taken from the repository into corpus/_repo/<target>/.
repo_seeds() {
    local target="$1" out="$FUZZ_DIR/corpus/_repo/$1"
    rm -rf "$out"
    mkdir -p "$out"
    case "$target" in
        workflow | services_file)
            cp "$ROOT"/workflows/*.yaml "$out"/
            # The ```yaml blocks of the docs: workflows and services files.
            local file
            for file in "$ROOT"/README.md "$ROOT"/docs/*.md; do
                awk -v out="$out" -v base="$(basename "$file" .md)" '
                    /^```ya?ml/ { inside = 1; n++; name = out "/" base "-" n ".yaml"; next }
                    /^```/ { inside = 0; next }
                    inside { print > name }' "$file"
            done
            ;;
        markdown)
            local file i=0
            while IFS= read -r -d '' file; do
                i=$((i + 1))
                cp "$file" "$out/fixture-$i.md"
            done < <(find "$ROOT/tests/fixtures/astro-big-doc" -name '*.md' -print0)
            cp "$ROOT"/README.md "$out"/readme.md
            for file in "$ROOT"/docs/*.md; do cp "$file" "$out/doc-$(basename "$file")"; done
            ;;
        expression)
            # The `if:` and `${{ }}` lines of the workflows, as conditions and values.
            grep -h -o 'if: .*' "$ROOT"/workflows/*.yaml "$ROOT"/docs/*.md 2>/dev/null |
                sed 's/^if: //' | head -50 | awk -v out="$out" '{ print > (out "/if-" NR) }' || true
            ;;
        *) ;;
    esac
}

minimize() {
    local target="$1" input="$2"
    build
    nice -n 19 "$BIN_DIR/$target" -minimize_crash=1 -runs=20000 -max_total_time=120 \
        -exact_artifact_path="$FUZZ_DIR/artifacts/$target/minimized-$(basename "$input")" "$input"
}

if [[ "${1:-}" == minimize ]]; then
    minimize "$2" "$3"
    exit
fi

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")
for target in "${targets[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $target "* ]] || { echo "unknown target: $target (known: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

[[ -n "${FUZZ_NO_BUILD:-}" ]] || build
mkdir -p "$FUZZ_DIR/logs"
summary="$FUZZ_DIR/logs/summary-$(date +%Y%m%d-%H%M%S).txt"
printf '%-14s %8s %12s %8s %8s %10s\n' target seconds executions corpus crashes artifacts | tee "$summary"
for target in "${targets[@]}"; do
    corpus="$FUZZ_DIR/corpus/$target"
    artifacts="$FUZZ_DIR/artifacts/$target"
    log="$FUZZ_DIR/logs/$target.log"
    mkdir -p "$corpus" "$artifacts" "$FUZZ_DIR/regressions/$target"
    repo_seeds "$target"
    before=$(find "$artifacts" -type f | wc -l)
    started=$(date +%s)
    # Fork mode with one child (-fork=1: one fuzzing process at a time; -jobs would
    # add a process around it): crashes, timeouts and ooms are saved, the run goes on.
    (cd "$FUZZ_DIR/logs" && nice -n 19 "$BIN_DIR/$target" \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$target")" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "$corpus" "$FUZZ_DIR/seeds/$target" "$FUZZ_DIR/regressions/$target" \
        "$FUZZ_DIR/corpus/_repo/$target" >"$log" 2>&1) || true
    elapsed=$(($(date +%s) - started))
    # The last status line of fork mode: `#N: cov: … corp: … oom/timeout/crash: a/b/c time: …`.
    last=$(grep -E '^#[0-9]+: ' "$log" | tail -1 || true)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    crashes=$(sed -nE 's/.*oom\/timeout\/crash: ([0-9]+\/[0-9]+\/[0-9]+).*/\1/p' <<<"$last")
    size=$(find "$corpus" -type f | wc -l)
    after=$(find "$artifacts" -type f | wc -l)
    printf '%-14s %8s %12s %8s %8s %10s\n' "$target" "$elapsed" "${execs:-?}" "$size" \
        "${crashes:-0/0/0}" "$((after - before)) new" | tee -a "$summary"
done
echo "(crashes are oom/timeout/crash counts of libFuzzer; logs in fuzz/logs/, inputs in fuzz/artifacts/<target>/)"
