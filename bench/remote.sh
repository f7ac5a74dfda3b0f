#!/usr/bin/env bash
# Three clones against one hub, against one machine. Run by hand from the
# repository root:
#
#   bash bench/remote.sh [TASKS]            # TASKS defaults to 30
#
# It builds git-agent (release; set GIT_AGENT_BIN to time another build),
# makes a bare hub and three clones, imports TASKS independent tasks of 1 s
# each (the scripted implementer of tests/fixtures, no reviewer), and times:
#
#   remote   three `git agent run --remote origin -j 2` at once, one per clone,
#            until all have ended (then one sync each)
#   local    one clone alone, `git agent run -j 6`, on a fresh copy of the plan
#
# against the ideal (TASKS / 6 seconds), and checks that each task was
# started once in the remote set-up.
set -euo pipefail

tasks=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/git-agent-bench-remote.XXXXXX")
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
implementer="$root/tests/fixtures/agents/implementer.sh"

clone() {
  git init -q "$1"
  (cd "$1" && git commit -q --allow-empty -m initial \
    && printf 'target: main\nroles:\n  implementer:\n    command: [sh, %s]\n    timeout: 60s\n' \
      "$implementer" > .git-agent.yaml)
}
plan() {
  {
    echo "tasks:"
    for i in $(seq 0 $((tasks - 1))); do
      printf '  - key: k%d\n    title: Task %d\n    spec: "sleep=1 record=%s"\n' "$i" "$i" "$1"
    done
  } > "$work/plan.yaml"
  "$GIT_AGENT_BIN" plan --file "$work/plan.yaml" > /dev/null
}
seconds() { echo "$1 $2" | awk '{printf "%.2f", $2 - $1}'; }

git init -q --bare "$work/hub"
for c in a b c; do
  clone "$work/$c"
  git -C "$work/$c" remote add origin "$work/hub"
done
(cd "$work/a" && plan "$work/record-remote.txt" && "$GIT_AGENT_BIN" sync > /dev/null)
for c in b c; do (cd "$work/$c" && "$GIT_AGENT_BIN" sync > /dev/null); done
start=$EPOCHREALTIME
for c in a b c; do
  (cd "$work/$c" && "$GIT_AGENT_BIN" run --remote origin -j 2 > "$work/$c.out" 2>&1) &
done
wait
end=$EPOCHREALTIME
remote=$(seconds "$start" "$end")
starts=$(grep -c '^start ' "$work/record-remote.txt")
once=$(awk '/^start /{n[$2]++} END {for (t in n) if (n[t] > 1) d++; print d + 0}' "$work/record-remote.txt")

clone "$work/solo"
(cd "$work/solo" && plan "$work/record-solo.txt")
start=$EPOCHREALTIME
(cd "$work/solo" && "$GIT_AGENT_BIN" run -j 6 > "$work/solo.out" 2>&1)
end=$EPOCHREALTIME
solo=$(seconds "$start" "$end")

ideal=$(echo "$tasks" | awk '{printf "%.2f", $1 / 6}')
echo "tasks: $tasks of 1 s; ideal at 6 agents: ${ideal} s"
echo "3 clones x run --remote origin -j 2: ${remote} s ($starts starts, $once tasks started twice)"
echo "1 clone x run -j 6: ${solo} s"
