#!/usr/bin/env bash
# Mutation testing (issue 20, docs/reliability.md "Mutation testing"): cargo-mutants
# over the protocol crates and core, each mutant judged by its own crate's tests
# (.cargo/mutants.toml). The checker (synod-harness) is not in the default list yet.
# Hours on 2 cores: not part of CI.
#   bash scripts/mutants.sh                 # every crate below
#   bash scripts/mutants.sh synod-twopc     # one crate
#   MUTANTS_ARGS=--iterate bash scripts/mutants.sh synod-core
#                                           # only what the last run did not catch
# Results per crate in target/mutants/<crate>/mutants.out (caught.txt, missed.txt, …).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants@27.1.0
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(synod-core synod-raft synod-paxos synod-zab synod-twopc synod-vvsync)
count() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
for c in "${crates[@]}"; do
  out="target/mutants/$c"
  mkdir -p "$out"
  # shellcheck disable=SC2086 # MUTANTS_ARGS is a list of flags
  cargo mutants -p "$c" -j 1 -o "$out" ${MUTANTS_ARGS:-} || true # missed mutants exit non-zero
  o="$out/mutants.out"
  echo "$c: $(count "$o/caught.txt") caught, $(count "$o/missed.txt") missed, $(count "$o/timeout.txt") timeouts, $(count "$o/unviable.txt") unviable"
done
