#!/usr/bin/env bash
# Model-checks the runtime's hand-written concurrent structures with loom: every
# `loom_tests` module of synod-runtime (src/sync.rs lists them). `--features loom`
# sets cfg(loom) for synod-runtime alone (its build.rs), so the run reuses the
# normal release build of every dependency. CI runs it.
# Usage: scripts/loom.sh   (LOOM_MAX_PREEMPTIONS=6 for a deeper search)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p synod-runtime --release --features loom --lib loom_tests "$@"
