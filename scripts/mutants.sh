#!/usr/bin/env bash
# Mutation testing (issue 20, docs/reliability.md "Mutation testing"): cargo-mutants
# over the protocol crates and core, each mutant judged by its own crate's tests
# (.cargo/mutants.toml), and over the checker (harness/src/checker, judged by the
# harness's unit tests: .cargo/mutants-checker.toml). Hours on 2 cores: not part of CI.
#   bash scripts/mutants.sh                 # every crate below
#   bash scripts/mutants.sh synod-twopc     # one crate
#   bash scripts/mutants.sh checker         # the checker
#   MUTANTS_ARGS=--iterate bash scripts/mutants.sh synod-core
#                                           # only what the last run did not catch
#   MUTANTS_ARGS='--shard 0/16 --sharding round-robin' bash scripts/mutants.sh checker
#                                           # a uniform sample of one sixteenth
# Results in target/mutants/<crate>/mutants.out (caught.txt, missed.txt, …).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants@27.1.0
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(synod-core synod-raft synod-paxos synod-zab synod-twopc synod-vvsync)
count() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
for c in "${crates[@]}"; do
  out="target/mutants/$c"
  mkdir -p "$out"
  target=(-p "$c")
  [ "$c" != checker ] || target=(-p synod-harness --config .cargo/mutants-checker.toml)
  # shellcheck disable=SC2086 # MUTANTS_ARGS is a list of flags
  cargo mutants "${target[@]}" -j 1 -o "$out" ${MUTANTS_ARGS:-} || true # missed mutants exit non-zero
  o="$out/mutants.out"
  echo "$c: $(count "$o/caught.txt") caught, $(count "$o/missed.txt") missed, $(count "$o/timeout.txt") timeouts, $(count "$o/unviable.txt") unviable"
done
