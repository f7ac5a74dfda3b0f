#!/bin/sh
# The demo's integrator: resolves merge conflicts in files where both sides
# added lines, by keeping both (ours first, then theirs). It refuses (exit 1)
# when a conflicted file is not plain text lines.
set -eu
cat > /dev/null
conflicted=$(git diff --name-only --diff-filter=U)
[ -n "$conflicted" ] || { echo "no conflict to resolve"; exit 0; }
for path in $conflicted; do
  awk '
    /^<<<<<<< / { next }
    /^=======$/ { next }
    /^>>>>>>> / { next }
    { print }
  ' "$path" > "$path.resolved"
  mv "$path.resolved" "$path"
  git add -- "$path"
  echo "resolved $path by keeping both sides"
done
