#!/bin/sh
# Make docs/stats.svg: a real run of six tasks on three
# slots with the scripted agents of tests/fixtures/agents, then its picture.
# One task fails its first attempt, one meets a rate limit twice, one
# depends on two others; agents report usage, the gate takes a second.
#   usage: docs/stats-demo.sh [path/to/git-agent]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-git-agent}
agents="$here/tests/fixtures/agents"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
git init -q -b main repo
cd repo
git config user.name demo && git config user.email demo@example.com
echo "# demo" > README.md && git add README.md && git commit -q -m initial
cat > .git-agent.yaml <<CONFIG
target: main
parallel: 3
test: sleep 1
roles:
  implementer:
    command: [sh, $agents/implementer.sh]
    timeout: 60s
    max_attempts: 3
    rate_limit: { backoff: 1s, max_backoff: 4s }
  reviewer:
    command: [sh, $agents/reviewer.sh, sleep=1, yaml]
    timeout: 60s
CONFIG
cat > plan.yaml <<PLAN
goal: A demo of where a run's time goes
tasks:
  - key: parse
    title: Parse the options
    spec: sleep=4 cost=0.21
  - key: flaky
    title: Read the config file
    spec: sleep=2 fail-once cost=0.12
  - key: busy
    title: Call the busy service
    spec: sleep=2 limited=$tmp/limited cost=0.09
  - key: docs
    title: Document the options
    spec: sleep=2 cost=0.05
    depends_on: [parse]
  - key: wire
    title: Wire options and config together
    spec: sleep=3 cost=0.15
    depends_on: [parse, flaky]
  - key: log
    title: Log each step
    spec: sleep=1 cost=0.04
PLAN
"$bin" plan --file plan.yaml > /dev/null
"$bin" run -j 3
"$bin" stats
"$bin" stats --svg "$here/docs/stats.svg"
