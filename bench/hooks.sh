#!/usr/bin/env bash
# What the hooks cost a commit. Run by hand from the repository root:
#
#   bash bench/hooks.sh [COMMITS]        # COMMITS defaults to 100
#
# It builds git-agent (release), then makes four repositories in a temp dir
# and times COMMITS `git commit --allow-empty` in each, interleaved (one
# commit per repository in turn, so drift hits all alike):
#
#   none       no hooks at all (the baseline)
#   plain      git-agent's hooks installed, on main (a branch that is no agent's)
#   agent      git-agent's hooks installed, on agent/<task> (provenance note written)
#   lefthook   lefthook (from PyPI, in a venv under the temp dir) running one
#              trivial command (`true`) in post-commit, on main; its hook finds
#              `lefthook` on PATH, which from PyPI is a Python wrapper around
#              the Go binary
#   lefthook-go  the same, with LEFTHOOK_BIN naming the Go binary the wheel
#              ships, so no Python starts (lefthook at its fastest)
#
# and prints the median and the 90th percentile of each, and each median's
# difference from the baseline. Times come from bash's $EPOCHREALTIME around
# each `git commit`, so they include process start-up, as a user feels it.
set -euo pipefail

commits=${1:-100}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/git-agent-bench-hooks.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "building git-agent (release)..." >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
export PATH="$root/target/release:$PATH"

echo "installing lefthook from PyPI into $work/venv..." >&2
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check lefthook
lefthook_bin="$work/venv/bin"

# Isolated git: no system or global config but an identity.
export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name bench
git config --global user.email bench@example.com
git config --global init.defaultBranch main

new_repo() {
  git init -q "$work/$1"
  git -C "$work/$1" commit -q --allow-empty -m initial
}

new_repo none

new_repo plain
(cd "$work/plain" && git agent hooks install >/dev/null)

new_repo agent
(
  cd "$work/agent"
  git agent hooks install >/dev/null
  task=$(git agent task add "Benchmark task")
  git checkout -q -b "agent/$task"
)

for setup in lefthook lefthook-go; do
  new_repo "$setup"
  (
    cd "$work/$setup"
    printf 'post-commit:\n  commands:\n    trivial:\n      run: "true"\n' >lefthook.yml
    PATH="$lefthook_bin:$PATH" lefthook install >/dev/null
  )
done
lefthook_go=$(find "$work/venv" -type f -name lefthook -path '*/lefthook/bin/*' | head -n 1)
[ -x "$lefthook_go" ] || { echo "no Go binary in the lefthook wheel" >&2; exit 1; }

# One timed commit in repository $1, in microseconds, appended to $work/$1.times.
time_commit() {
  local start end
  local go=
  [ "$1" = lefthook-go ] && go=$lefthook_go
  start=${EPOCHREALTIME/./}
  PATH="$lefthook_bin:$PATH" LEFTHOOK_BIN=$go \
    git -C "$work/$1" commit -q --allow-empty -m "commit $2" >/dev/null 2>&1
  end=${EPOCHREALTIME/./}
  echo $((end - start)) >>"$work/$1.times"
}

setups=(none plain agent lefthook lefthook-go)
for setup in "${setups[@]}"; do time_commit "$setup" warmup; rm -f "$work/$setup.times"; done
echo "timing $commits commits in each of: ${setups[*]}..." >&2
for ((i = 0; i < commits; i++)); do
  for setup in "${setups[@]}"; do time_commit "$setup" "$i"; done
done

# The value at fraction $2 (0.5: the median) of the sorted numbers in file $1.
quantile() {
  sort -n "$1" | awk -v q="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * q) + 1; print v[i] }'
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

# Sanity: the agent repository's commits carry provenance notes.
notes=$(git -C "$work/agent" notes --ref agent list | wc -l)
[ "$notes" -ge "$commits" ] || { echo "expected provenance notes in the agent repo, found $notes" >&2; exit 1; }

base=$(quantile "$work/none.times" 0.5)
echo
echo "git $(git --version | cut -d' ' -f3), $(nproc) cores, $commits commits each (ms per git commit)"
echo
echo "| setup | median | p90 | median - baseline |"
echo "|---|---|---|---|"
for setup in "${setups[@]}"; do
  median=$(quantile "$work/$setup.times" 0.5)
  p90=$(quantile "$work/$setup.times" 0.9)
  echo "| $setup | $(ms "$median") | $(ms "$p90") | $(ms $((median - base))) |"
done
