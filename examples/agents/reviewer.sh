#!/bin/sh
# The demo's reviewer: a plain POSIX sh script, no network. git-agent runs
# it in a detached checkout of the head under review, with the range's base
# in $GIT_AGENT_BASE. It reads the real diff of that range and applies two
# simple checks:
#   1. no added line may contain TODO or FIXME (each one is named, file:line);
#   2. a change to a source file must come with a test (a changed file under
#      a test directory or named like a test, or an added test function).
# It prints a readable summary and ends with `VERDICT: APPROVE` or
# `VERDICT: CHANGES`: git-agent takes the last line as the verdict and
# everything before it as the summary, which the implementer's next attempt
# receives verbatim.
set -u
cat > /dev/null  # the prompt: this reviewer reads the diff itself
base=${GIT_AGENT_BASE:?GIT_AGENT_BASE is not set: run me through git agent review}
range="$base..HEAD"

commits=$(git rev-list --count "$range")
files=$(git diff --name-only --diff-filter=d "$range")
nfiles=$(printf '%s\n' "$files" | grep -c .)
echo "Reviewed $commits commit(s) changing $nfiles file(s) (${GIT_AGENT_BRANCH:-HEAD}, $(git rev-parse --short "$base")..$(git rev-parse --short HEAD))."
echo

# 1. TODO / FIXME on added lines, with their line numbers in the new file.
todos=$(git diff --no-color --no-ext-diff "$range" | awk '
  /^diff --git / { header = 1; next }
  header && /^\+\+\+ / { file = substr($0, 7); next }
  /^@@/ {
    header = 0
    match($0, /\+[0-9]+/)
    line = substr($0, RSTART + 1, RLENGTH - 1) - 1
    next
  }
  header { next }
  /^\+/ {
    line++
    if ($0 ~ /TODO|FIXME/) { text = substr($0, 2); sub(/^[ \t]+/, "", text); print "- " file ":" line ": " text }
    next
  }
  /^ / { line++ }
')

# 2. Source files changed without a test.
is_test() {
  case "$1" in
    test/*|tests/*|*/test/*|*/tests/*|spec/*|*/spec/*|*/__tests__/*) return 0 ;;
    test_*|*/test_*|*_test.*|*.test.*|*_spec.*|*.spec.*) return 0 ;;
  esac
  return 1
}
is_source() {
  case "$1" in
    *.c|*.h|*.cc|*.cpp|*.rs|*.go|*.py|*.js|*.ts|*.jsx|*.tsx|*.java|*.rb|*.sh) return 0 ;;
  esac
  return 1
}
sources=''
tested=no
newline='
'
IFS=$newline  # one file name a line, spaces and all
for f in $files; do
  if is_test "$f"; then
    tested=yes
  elif is_source "$f"; then
    sources="$sources$f$newline"
  fi
done
# A test added inside a source file counts too (Rust, Python, Go, JS).
if [ "$tested" = no ] && git diff --no-color "$range" | grep -Eq '^\+.*(#\[test\]|def test_|func Test|(^|[^a-z])(it|test)\()'; then
  tested=yes
fi

problems=0
if [ -n "$todos" ]; then
  problems=$((problems + 1))
  echo "Added lines still say TODO or FIXME; finish the work or drop the marker:"
  printf '%s\n' "$todos"
  echo
fi
if [ -n "$sources" ] && [ "$tested" = no ]; then
  problems=$((problems + 1))
  echo "Source changed without a test; add or change a test that covers:"
  for f in $sources; do echo "- $f"; done
  unset IFS
  echo
fi

if [ "$problems" -eq 0 ]; then
  echo "No TODO/FIXME added, and the change comes with tests where it needs them."
  echo "VERDICT: APPROVE"
else
  echo "VERDICT: CHANGES"
fi
