#!/usr/bin/env bash
# What `git agent sync` costs when nothing is new. Run by hand from the
# repository root:
#
#   bash bench/sync.sh [TASKS] [ROUNDS]     # defaults: 10000 tasks, 5 rounds
#
# It builds git-agent (release; set GIT_AGENT_BIN to time another build),
# makes a bare hub and one clone holding TASKS tasks (one imported plan),
# syncs once so both sides hold the same, and then times ROUNDS of each,
# interleaved:
#
#   fetch   a plain `git fetch` of the same refs into the same namespace
#           (agent refs and notes): the floor any sync pays
#   sync    `git agent sync` with nothing new
#
# and prints the median of each and their ratio (target: sync under 2x).
set -euo pipefail

tasks=${1:-10000}
rounds=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/git-agent-bench-sync.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "${GIT_AGENT_BIN:-}" ]; then
  echo "building git-agent (release)..." >&2
  (cd "$root" && cargo build --locked --release -q)
  GIT_AGENT_BIN="${CARGO_TARGET_DIR:-$root/target}/release/git-agent"
fi
export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name bench
git config --global user.email bench@localhost
git config --global init.defaultBranch main

git init -q --bare "$work/hub"
git init -q "$work/clone"
cd "$work/clone"
git commit -q --allow-empty -m initial
git remote add origin "$work/hub"
{
  echo "tasks:"
  for i in $(seq 0 $((tasks - 1))); do
    printf '  - key: k%d\n    title: Task %d\n' "$i" "$i"
  done
} > "$work/plan.yaml"
"$GIT_AGENT_BIN" plan --file "$work/plan.yaml" > /dev/null
"$GIT_AGENT_BIN" sync > /dev/null
[ "$("$GIT_AGENT_BIN" sync)" = "nothing to sync with origin" ]

time_of() {
  local start end
  start=$EPOCHREALTIME
  "$@" > /dev/null
  end=$EPOCHREALTIME
  echo "$start $end" | awk '{printf "%.1f\n", ($2 - $1) * 1000}'
}
fetch_times=() sync_times=()
for _ in $(seq "$rounds"); do
  fetch_times+=("$(time_of git fetch --quiet --no-tags --no-write-fetch-head --prune origin \
    '+refs/agent/*:refs/agent-remotes/origin/*' \
    '+refs/notes/agent*:refs/agent-remotes/origin/notes/agent*')")
  sync_times+=("$(time_of "$GIT_AGENT_BIN" sync)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
f=$(median "${fetch_times[@]}")
s=$(median "${sync_times[@]}")
echo "tasks: $tasks, rounds: $rounds"
echo "git fetch (same refs): median ${f} ms"
echo "git agent sync (nothing new): median ${s} ms"
echo "ratio: $(echo "$s $f" | awk '{printf "%.2f", $1 / $2}')x"
