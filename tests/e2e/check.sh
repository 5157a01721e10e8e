# Sourced by the end-to-end scripts: `check NAME COMMAND...` runs the command, prints
# "ok   NAME" or "FAIL NAME" with the last lines of its output, and counts both in $pass
# and $fail; `summary LABEL` prints "LABEL: N passed, M failed" (the closing line the test
# command sums) and succeeds only if nothing failed. Needs $work, a scratch folder.
pass=0
fail=0
check() {
  local name=$1
  shift
  if "$@" >"$work/last.log" 2>&1; then
    pass=$((pass + 1))
    echo "ok   $name"
  else
    fail=$((fail + 1))
    echo "FAIL $name"
    sed 's/^/     | /' "$work/last.log" | tail -n "${CHECK_TAIL:-25}"
  fi
}
summary() {
  echo "$1: $pass passed, $fail failed"
  [ "$fail" = 0 ]
}
