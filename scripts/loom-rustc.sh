#!/usr/bin/env bash
# RUSTC_WRAPPER for the loom run of synod-runtime: keep `--cfg loom` for synod_runtime
# (and cargo's `___` cfg probe, so the loom dependency is enabled), strip it from every
# other crate, so that tokio builds normally (its own loom mode has no tokio::net).
rustc=$1; shift
args=("$@")
if [[ " $* " != *" --crate-name synod_runtime "* && " $* " != *" --crate-name ___ "* ]]; then
  kept=()
  for ((i = 0; i < ${#args[@]}; i++)); do
    if [[ ${args[i]} == --cfg && ${args[i+1]:-} == loom ]]; then i=$((i + 1)); continue; fi
    kept+=("${args[i]}")
  done
  args=("${kept[@]}")
fi
exec "$rustc" "${args[@]}"
