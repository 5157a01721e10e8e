#!/usr/bin/env bash
# The install decision of scripts/setup-deps, run against a fresh image's package list
# (tests/fixtures/fresh-image-packages.txt, copied from the machine kind's own list of what
# a new machine has) and variations of it; and the end-to-end scripts run their tools from
# PATH, never by absolute path. Prints one line per check and "setup-deps: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
fresh=tests/fixtures/fresh-image-packages.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. tests/e2e/check.sh
plan() { scripts/setup-deps --plan --clients --packages "$1" | tr '\n' ' '; }
expect_plan() { # expect_plan LIST "pkg pkg ": the plan is exactly that
  local got
  got=$(plan "$1")
  echo "plan: '$got', expected '$2'"
  [ "$got" = "$2" ]
}
without() { grep -vE "$1" "$fresh" >"$work/$2"; echo "$work/$2"; }
with() { { cat "$fresh"; printf '%s\n' "$@"; } >"$work/with"; echo "$work/with"; }

check "the fresh list is the one whose libclang-cpp14 fooled a glob" \
  grep -q "^apt	libclang-cpp14	" "$fresh"
check "a fresh image gets libclang-dev and the Debian clients, not Debian's awscli" \
  expect_plan "$fresh" "libclang-dev restic rclone s3cmd nftables "
check "libclang-dev installed: not installed again" \
  expect_plan "$(with "apt	libclang-dev	1:14.0-55.7~deb12u1")" "restic rclone s3cmd nftables "
check "libclang1-14 alone (a library without clang's headers) is not enough" \
  expect_plan "$(with "apt	libclang1-14	1:14.0.6-12")" "libclang-dev restic rclone s3cmd nftables "
check "no aws CLI at all: Debian's awscli" \
  expect_plan "$(without '	awscli	' no-aws)" "libclang-dev restic rclone s3cmd nftables awscli "
check "no jq nor curl: both installed" \
  expect_plan "$(without '^apt	(jq|curl)	' no-jq)" "libclang-dev curl jq restic rclone s3cmd nftables "
check "without --clients only the build's package" \
  bash -c "[ \"\$(scripts/setup-deps --plan --packages '$fresh' | tr '\n' ' ')\" = 'libclang-dev ' ]"
check "this machine, after setup-deps: nothing left to install" \
  bash -c "[ -z \"\$(scripts/setup-deps --plan --clients)\" ]"
no_absolute_tools() {
  ! grep -nE '(^|[^A-Za-z0-9_./-])/(usr/)?(local/)?s?bin/(aws|s3cmd|rclone|restic|curl|jq)\b' \
    tests/e2e/*.sh scripts/*
}
check "scripts run aws, s3cmd, rclone, restic, curl and jq from PATH" no_absolute_tools
summary setup-deps
