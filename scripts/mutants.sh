#!/usr/bin/env bash
# Mutation testing (issue 20, docs/reliability.md "Mutation testing"): cargo-mutants
# over the protocol crates, core and the checker, each mutant judged by its own
# crate's tests (.cargo/mutants.toml). Hours on 2 cores: not part of CI.
#   bash scripts/mutants.sh                 # every crate below
#   bash scripts/mutants.sh synod-twopc     # one crate
# Results per crate in target/mutants/<crate>/mutants.out (caught.txt, missed.txt, …).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants@27.1.0
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(synod-core synod-raft synod-paxos synod-zab synod-twopc synod-vvsync)
for c in "${crates[@]}"; do
  cargo mutants -p "$c" -j 1 -o "target/mutants/$c" || true # missed mutants exit non-zero
  echo "$c: $(wc -l < "target/mutants/$c/mutants.out/caught.txt") caught, $(wc -l < "target/mutants/$c/mutants.out/missed.txt") missed, $(wc -l < "target/mutants/$c/mutants.out/timeout.txt") timeouts, $(wc -l < "target/mutants/$c/mutants.out/unviable.txt") unviable"
done
