#!/usr/bin/env bash
# The bug zoo: classic protocol bugs kept as mutations of the real code, one patch each
# (scripts/bugzoo/<protocol>-<bug>.patch, a few lines of text, then a `git diff`). For
# each, this applies the patch to a scratch clone of the working tree's tracked files
# (HEAD plus uncommitted changes), builds `synod`, runs the default sweep against the
# mutated protocol and prints whether the sweep caught it, with the first failing
# seed. A sweep that misses a zoo bug means the nemesis has a blind spot: make it
# stronger, never the bug weaker.
#
#   scripts/bugzoo.sh [--seeds N] [--faults SPEC] [--nodes N] [--no-build] [NAME...]
#   scripts/bugzoo.sh --check        # only check that every patch still applies (CI)
#
# NAME is a patch name without `.patch` (default: all of them). The scratch clone, its
# target directory and one binary per bug live in $SYNOD_ZOO_DIR (default:
# $TMPDIR/synod-bugzoo); --no-build sweeps again with the binaries built last time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
zoo=$root/scripts/bugzoo
seeds=2000
faults=all
nodes=3
check_only=0
no_build=0
names=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --faults) faults=$2; shift 2 ;;
        --nodes) nodes=$2; shift 2 ;;
        --check) check_only=1; shift ;;
        --no-build) no_build=1; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "bugzoo: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) names+=("$1"); shift ;;
    esac
done
if [ ${#names[@]} -eq 0 ]; then
    for p in "$zoo"/*.patch; do names+=("$(basename "$p" .patch)"); done
fi
for name in "${names[@]}"; do
    if [ ! -f "$zoo/$name.patch" ]; then
        echo "bugzoo: no patch $zoo/$name.patch" >&2
        exit 2
    fi
done

if [ $check_only = 1 ]; then
    for name in "${names[@]}"; do
        if ! git -C "$root" apply --check "$zoo/$name.patch"; then
            echo "bugzoo: $name.patch no longer applies to this tree: update the mutation" >&2
            exit 1
        fi
    done
    echo "bugzoo: all ${#names[@]} patches apply"
    exit 0
fi

work=${SYNOD_ZOO_DIR:-${TMPDIR:-/tmp}/synod-bugzoo}
src=$work/src
export CARGO_TARGET_DIR=$work/target
# A commit of the working tree's tracked files, without touching the tree or index.
rev=$(git -C "$root" stash create)
rev=${rev:-$(git -C "$root" rev-parse HEAD)}
mkdir -p "$work/bin"
if [ ! -d "$src/.git" ]; then
    git clone -q --no-checkout "$root" "$src"
fi
if [ $no_build = 0 ]; then
    git -C "$src" fetch -q "$root" "$rev"
fi

printf '%-28s %-6s %-8s %-11s %s\n' bug proto verdict first-seed kind
caught=0
for name in "${names[@]}"; do
    proto=${name%%-*}
    bin=$work/bin/$name
    if [ $no_build = 0 ]; then
        git -C "$src" checkout -q -f --detach "$rev"
        git -C "$src" clean -q -fdx -e target
        git -C "$src" apply "$zoo/$name.patch"
        if ! cargo build -q --release --manifest-path "$src/Cargo.toml" -p synod-harness \
            --bin synod 2>"$work/$name.build.log"; then
            echo "bugzoo: $name does not build; see $work/$name.build.log" >&2
            exit 1
        fi
        cp "$CARGO_TARGET_DIR/release/synod" "$bin"
    elif [ ! -x "$bin" ]; then
        echo "bugzoo: --no-build, but $bin was never built" >&2
        exit 2
    fi
    out=$("$bin" check --protocol "$proto" --seeds "$seeds" --fail-fast \
        --faults "$faults" --nodes "$nodes" 2>/dev/null || true)
    echo "$out" >"$work/$name.check.log"
    first=$(grep -m1 -o '^seed [0-9]*: [A-Za-z]*' <<<"$out" || true)
    if [ -n "$first" ]; then
        verdict=caught
        caught=$((caught + 1))
        seed=$(cut -d' ' -f2 <<<"$first" | tr -d :)
        kind=$(cut -d' ' -f3 <<<"$first")
    else
        verdict=MISSED
        seed=-
        kind=-
    fi
    printf '%-28s %-6s %-8s %-11s %s\n' "$name" "$proto" "$verdict" "$seed" "$kind"
done
echo "caught $caught of ${#names[@]} (seeds 0..$seeds, --faults $faults, --nodes $nodes, tree ${rev:0:10})"
[ "$caught" = "${#names[@]}" ]
