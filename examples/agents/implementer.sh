#!/bin/sh
# The demo's implementer: a small, deterministic stand-in for a coding agent.
# It reads its prompt on stdin and writes every file the task's spec shows as
#
#   ```file path/to/file
#   content
#   ```
#
# When the prompt carries review feedback that mentions TODO, it leaves out
# the TODO lines this time. Then it commits. No network, no model.
set -eu
prompt=$(mktemp)
trap 'rm -f "$prompt"' EXIT
cat > "$prompt"

drop_todos=no
if grep -q "review asked for changes" "$prompt" && grep -q "TODO" "$prompt"; then
  drop_todos=yes
  echo "review feedback mentions TODO lines: leaving them out this time"
fi

# Write each ```file block; awk keeps the content verbatim.
awk -v drop="$drop_todos" '
  /^```file / { path = $2; printf "" > path; writing = 1; next }
  /^```$/ && writing { close(path); print "wrote " path; writing = 0; next }
  writing { if (drop == "yes" && $0 ~ /TODO/) next; print >> path }
' "$prompt"

if [ -z "$(git status --porcelain)" ]; then
  echo "the spec shows no file to write" >&2
  exit 1
fi
git add -A
git commit -q -m "${GIT_AGENT_TASK}: $(sed -n 's/^# Task [^:]*: //p' "$prompt" | head -n 1)"
echo "committed $(git rev-parse --short HEAD)"
