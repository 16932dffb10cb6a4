#!/usr/bin/env bash
# Model-checks the runtime's hand-written concurrent structures with loom
# (the WAL's GroupCommitQueue). Not part of CI: it rebuilds the crate graph.
# Usage: scripts/loom.sh   (LOOM_MAX_PREEMPTIONS=6 for a deeper search)
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTC_WRAPPER="$PWD/scripts/loom-rustc.sh" RUSTFLAGS="--cfg loom" \
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/loom-target}" \
  cargo test -p synod-runtime --release --lib group_commit "$@"
