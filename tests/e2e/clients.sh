#!/usr/bin/env bash
# End-to-end: real S3 clients from Debian's packages (aws CLI, s3cmd, rclone, restic)
# against the real stele-server binary on 127.0.0.1. Prints one line per check and a
# closing "clients: N passed, M failed"; exits non-zero if any check failed.
#   tests/e2e/clients.sh PATH/TO/stele-server
set -uo pipefail
server_bin=${1:?usage: clients.sh PATH/TO/stele-server}
work=$(mktemp -d)
server_pid=""
tls_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$tls_pid" ] && kill "$tls_pid" 2>/dev/null && wait "$tls_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

. "$(dirname "$0")/check.sh"

export AWS_ACCESS_KEY_ID=STELEE2EACCESSKEY001
export AWS_SECRET_ACCESS_KEY=stele-e2e-secret-key-0123456789abcdefghij
export AWS_DEFAULT_REGION=us-east-1
export STELE_ACCESS_KEY=$AWS_ACCESS_KEY_ID STELE_SECRET_KEY=$AWS_SECRET_ACCESS_KEY
# Given, so the server generates and prints no admin credential of its own.
export STELE_ADMIN_KEY=STELEE2EADMINKEY0001 STELE_ADMIN_SECRET=stele-e2e-admin-secret-0123456789abcdef
# This machine sets a CA bundle that breaks some clients' plain-HTTP transports.
unset AWS_CA_BUNDLE

mkfifo "$work/ready"
"$server_bin" --data "$work/data" --s3-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 \
  >"$work/ready" 2>"$work/server.log" &
server_pid=$!
# Skip any lines before the ready line (e.g. a generated credential), then keep draining.
exec 3<"$work/ready"
line=""
while read -r line <&3 && [[ $line != "stele-server ready "* ]]; do :; done
cat <&3 >/dev/null &
exec 3<&-
endpoint=$(sed -n 's/.* s3=\(http:[^ ]*\).*/\1/p' <<<"$line")
if [ -z "$endpoint" ]; then
  echo "server did not become ready:"
  cat "$work/server.log"
  exit 1
fi
hostport=${endpoint#http://}
admin_endpoint=$(sed -n 's/.* admin=\(http:[^ ]*\).*/\1/p' <<<"$line")
echo "server at $endpoint (admin $admin_endpoint)"

# --- a backup-writer identity, made through the admin API ------------------------------
# restic, rclone and the "backup-writer" checks use this key instead of the owner
# credential above. The key's JSON passes to them through $work/bw-key.json.
admin_post() { # admin_post PATH JSON: POST JSON to the admin API; body to stdout, 201 or fail
  local code
  code=$(curl -sS -o "$work/admin.out" -w '%{http_code}' -u "$STELE_ADMIN_KEY:$STELE_ADMIN_SECRET" \
    -H 'content-type: application/json' -d "$2" "$admin_endpoint$1") || return 1
  cat "$work/admin.out" && echo
  [ "$code" = 201 ] || { echo "POST $1: HTTP $code, expected 201"; return 1; }
}
make_backup_writer() {
  [ -n "$admin_endpoint" ] || { echo "no admin= address on the ready line: $line"; return 1; }
  admin_post /v1/users '{"name":"backup","grants":[{"role":"backup-writer"}]}' || return 1
  admin_post /v1/users/backup/keys '{"plane":"s3"}' >"$work/bw-key.json" || { cat "$work/bw-key.json"; return 1; }
  cat "$work/bw-key.json"
  jq -e '.user == "backup" and .plane == "s3" and (.access_key | test("^[A-Z0-9]+$"))
         and (.secret_key | test("^[A-Za-z0-9]+$"))' "$work/bw-key.json"
}
check "admin: user with role backup-writer, and an S3 key for it" make_backup_writer
bw_key=$(jq -r '.access_key // empty' "$work/bw-key.json" 2>/dev/null)
bw_secret=$(jq -r '.secret_key // empty' "$work/bw-key.json" 2>/dev/null)
# Prefix for commands that run as the backup-writer (the values are alphanumeric).
as_bw="env AWS_ACCESS_KEY_ID=${bw_key:-none} AWS_SECRET_ACCESS_KEY=${bw_secret:-none}"

# A tree of files: empty, small, odd sizes, and two above the multipart cut-offs used below.
tree=$work/tree
mkdir -p "$tree/a/b" "$tree/c"
: >"$tree/empty"
echo "hello stele" >"$tree/a/hello.txt"
head -c 1000003 /dev/urandom >"$tree/a/b/odd.bin"
head -c 12582917 /dev/urandom >"$tree/c/twelve.bin"
head -c 7340033 /dev/urandom >"$tree/seven.bin"
for i in $(seq 1 30); do head -c $((i * 997)) /dev/urandom >"$tree/c/small-$i"; done

# Wrappers on PATH, so checks written as `bash -c` strings see the same commands.
# They run the clients found on PATH before them (a fresh image's aws CLI is Python's, not
# Debian's), never a fixed path.
real_aws=$(command -v aws) || { echo "no aws CLI on PATH"; exit 1; }
real_s3cmd=$(command -v s3cmd) || { echo "no s3cmd on PATH"; exit 1; }
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec %q --endpoint-url %s "$@"\n' "$real_aws" "$endpoint" >"$work/bin/aws"
printf '#!/bin/sh\nexec %q -c %s "$@"\n' "$real_s3cmd" "$work/s3cfg" >"$work/bin/s3cmd"
chmod +x "$work/bin/aws" "$work/bin/s3cmd"
export PATH="$work/bin:$PATH"

# --- aws CLI ---------------------------------------------------------------------------
head -c $((100 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
check "aws: make bucket" aws s3 mb s3://awscli
check "aws: multipart upload of 100 MiB" aws s3 cp "$work/big.bin" s3://awscli/big.bin
check "aws: multipart ETag has a part count" bash -c \
  "aws s3api head-object --bucket awscli --key big.bin --output text --query ETag | grep -q -- '-[0-9]'"
check "aws: download is byte-identical" bash -c \
  "aws s3 cp s3://awscli/big.bin '$work/big.back' && cmp '$work/big.bin' '$work/big.back'"
check "aws: enable versioning" aws s3api put-bucket-versioning --bucket awscli \
  --versioning-configuration Status=Enabled
check "aws: two versions of one key" bash -c \
  "echo one | aws s3 cp - s3://awscli/v.txt && echo two | aws s3 cp - s3://awscli/v.txt"
check "aws: versioned listing shows both" bash -c \
  "[ \"\$(aws s3api list-object-versions --bucket awscli --prefix v.txt --query 'length(Versions)' --output text)\" = 2 ]"
check "aws: presigned GET with curl" bash -c \
  "url=\$(aws s3 presign s3://awscli/v.txt --expires-in 300) && [ \"\$(curl -sf \"\$url\")\" = two ]"
check "aws: tampered presigned URL is refused" bash -c \
  "url=\$(aws s3 presign s3://awscli/v.txt --expires-in 300) && code=\$(curl -s -o /dev/null -w '%{http_code}' \"\${url/v.txt/big.bin}\") && [ \"\$code\" = 403 ]"
check "aws: delete leaves a marker, old versions stay" bash -c \
  "aws s3 rm s3://awscli/v.txt && ! aws s3api head-object --bucket awscli --key v.txt && \
   aws s3api head-object --bucket awscli --key big.bin && \
   [ \"\$(aws s3api list-object-versions --bucket awscli --prefix v.txt --query 'length(DeleteMarkers)' --output text)\" = 1 ]"

# --- s3cmd -----------------------------------------------------------------------------
cat >"$work/s3cfg" <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $hostport
host_bucket = $hostport
bucket_location = us-east-1
use_https = False
signature_v2 = False
CFG
check "s3cmd: make bucket" s3cmd mb s3://s3cmd
check "s3cmd: put" s3cmd put "$tree/a/b/odd.bin" s3://s3cmd/dir/odd.bin
check "s3cmd: ls" bash -c "s3cmd ls s3://s3cmd/dir/ | grep -q 'dir/odd.bin'"
check "s3cmd: get is byte-identical" bash -c \
  "s3cmd get s3://s3cmd/dir/odd.bin '$work/odd.back' && cmp '$tree/a/b/odd.bin' '$work/odd.back'"
check "s3cmd: del" s3cmd del s3://s3cmd/dir/odd.bin
check "s3cmd: gone after del" bash -c "out=\$(s3cmd ls s3://s3cmd/dir/) && ! grep -q odd.bin <<<\"\$out\""

# --- rclone (as the backup-writer) -----------------------------------------------------
export RCLONE_CONFIG_STELE_TYPE=s3 RCLONE_CONFIG_STELE_PROVIDER=Other \
  RCLONE_CONFIG_STELE_ACCESS_KEY_ID=${bw_key:-none} \
  RCLONE_CONFIG_STELE_SECRET_ACCESS_KEY=${bw_secret:-none} \
  RCLONE_CONFIG_STELE_ENDPOINT=$endpoint RCLONE_CONFIG_STELE_FORCE_PATH_STYLE=true \
  RCLONE_CONFIG_STELE_REGION=us-east-1
rc="rclone --config /dev/null --s3-upload-cutoff 5M --s3-chunk-size 5M"
check "rclone: make bucket" $rc mkdir stele:rclone
check "rclone: sync a tree (multipart for large files)" $rc sync "$tree" stele:rclone/backup
check "rclone: check" $rc check "$tree" stele:rclone/backup
check "rclone: copy back is identical" bash -c \
  "$rc copy stele:rclone/backup '$work/rclone-back' && diff -r '$tree' '$work/rclone-back'"
check "rclone: sync deletes what was removed" bash -c \
  "rm '$tree/c/small-3' && $rc sync '$tree' stele:rclone/backup && out=\$($rc lsf stele:rclone/backup/c) && grep -qx small-4 <<<\"\$out\" && ! grep -qx small-3 <<<\"\$out\""

# --- restic (as the backup-writer) -----------------------------------------------------
export RESTIC_PASSWORD=stele-e2e RESTIC_REPOSITORY=s3:$endpoint/restic
rs="$as_bw restic -o s3.bucket-lookup=path --no-cache"
check "restic: init" $rs init
check "restic: backup" $rs backup "$tree"
check "restic: second backup" bash -c "echo more >'$tree/a/new.txt' && $rs backup '$tree'"
check "restic: check --read-data" $rs check --read-data
check "restic: restore is identical" bash -c \
  "$rs restore latest --target '$work/restic-back' && diff -r '$tree' '$work/restic-back$tree'"

# --- Object Lock (aws CLI) -------------------------------------------------------------
# The locked version's id passes between checks through $work/lock-version.
lock_cfg='{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":1}}}'
lock_until=$(date -u -d '+10 days' +%Y-%m-%dT%H:%M:%SZ)
lock_shorter=$(date -u -d '+2 days' +%Y-%m-%dT%H:%M:%SZ)
echo "locked: cannot be deleted while retained" >"$work/locked.txt"
check "aws lock: bucket with default COMPLIANCE retention of 1 day" bash -c \
  "aws s3api create-bucket --bucket locked --object-lock-enabled-for-bucket && \
   aws s3api put-object-lock-configuration --bucket locked --object-lock-configuration '$lock_cfg' && \
   out=\$(aws s3api get-object-lock-configuration --bucket locked --output text \
     --query 'ObjectLockConfiguration.[ObjectLockEnabled,Rule.DefaultRetention.Mode,Rule.DefaultRetention.Days]') && \
   echo \"\$out\" && [ \"\$out\" = \"\$(printf 'Enabled\tCOMPLIANCE\t1')\" ]"
check "aws lock: put an object, get its version id" bash -c \
  "vid=\$(aws s3api put-object --bucket locked --key held.txt --body '$work/locked.txt' \
     --query VersionId --output text) && echo \"\$vid\" && [ -n \"\$vid\" ] && [ \"\$vid\" != None ] && \
   echo \"\$vid\" >'$work/lock-version'"
check "aws lock: deleting the retained version is AccessDenied, it stays readable" bash -c \
  "vid=\$(cat '$work/lock-version') && [ -n \"\$vid\" ] || exit 1
   out=\$(aws s3api delete-object --bucket locked --key held.txt --version-id \"\$vid\" 2>&1) && \
     { echo \"delete unexpectedly succeeded: \$out\"; exit 1; }
   grep AccessDenied <<<\"\$out\" || { echo \"\$out\"; exit 1; }
   aws s3api get-object --bucket locked --key held.txt --version-id \"\$vid\" '$work/locked.back' && \
   cmp '$work/locked.txt' '$work/locked.back'"
check "aws lock: extend retention to 10 days" bash -c \
  "vid=\$(cat '$work/lock-version') && [ -n \"\$vid\" ] && \
   aws s3api put-object-retention --bucket locked --key held.txt --version-id \"\$vid\" \
     --retention '{\"Mode\":\"COMPLIANCE\",\"RetainUntilDate\":\"$lock_until\"}'"
check "aws lock: retention reads back extended; shortening is AccessDenied" bash -c \
  "vid=\$(cat '$work/lock-version') && [ -n \"\$vid\" ] || exit 1
   read_back() { aws s3api get-object-retention --bucket locked --key held.txt --version-id \"\$vid\" \
     --output text --query 'Retention.[Mode,RetainUntilDate]'; }
   out=\$(read_back) && echo \"\$out\" && [ \"\${out%T*}\" = \"\$(printf 'COMPLIANCE\t${lock_until%%T*}')\" ] || exit 1
   out=\$(aws s3api put-object-retention --bucket locked --key held.txt --version-id \"\$vid\" \
     --retention '{\"Mode\":\"COMPLIANCE\",\"RetainUntilDate\":\"$lock_shorter\"}' 2>&1) && \
     { echo \"shortening unexpectedly succeeded: \$out\"; exit 1; }
   grep AccessDenied <<<\"\$out\" || { echo \"\$out\"; exit 1; }
   out=\$(read_back) && echo \"after refused shortening: \$out\" && \
   [ \"\${out%T*}\" = \"\$(printf 'COMPLIANCE\t${lock_until%%T*}')\" ]"

# --- backup-writer against the Object Lock bucket (aws CLI) ----------------------------
# The role may read lock state but not weaken it: the locked version made by the owner key
# above must survive a delete, and the bucket's lock configuration must not change. The
# refused configuration is a stricter one, so only the role (not a loosening rule) refuses it.
check "backup-writer: deleting the locked version is AccessDenied, it stays readable" bash -c \
  "vid=\$(cat '$work/lock-version') && [ -n \"\$vid\" ] || exit 1
   out=\$($as_bw aws s3api delete-object --bucket locked --key held.txt --version-id \"\$vid\" 2>&1) && \
     { echo \"delete unexpectedly succeeded: \$out\"; exit 1; }
   grep AccessDenied <<<\"\$out\" || { echo \"\$out\"; exit 1; }
   $as_bw aws s3api get-object --bucket locked --key held.txt --version-id \"\$vid\" '$work/bw-locked.back' && \
   cmp '$work/locked.txt' '$work/bw-locked.back'"
bw_lock_cfg='{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":30}}}'
check "backup-writer: changing the lock configuration is AccessDenied, it stays as it was" bash -c \
  "out=\$($as_bw aws s3api put-object-lock-configuration --bucket locked \
     --object-lock-configuration '$bw_lock_cfg' 2>&1) && \
     { echo \"configuration change unexpectedly succeeded: \$out\"; exit 1; }
   grep AccessDenied <<<\"\$out\" || { echo \"\$out\"; exit 1; }
   out=\$($as_bw aws s3api get-object-lock-configuration --bucket locked --output text \
     --query 'ObjectLockConfiguration.[ObjectLockEnabled,Rule.DefaultRetention.Mode,Rule.DefaultRetention.Days]') && \
   echo \"\$out\" && [ \"\$out\" = \"\$(printf 'Enabled\tCOMPLIANCE\t1')\" ]"

# --- over HTTPS: a second server with its self-signed certificate as the clients' CA ---
mkfifo "$work/tls-ready"
"$server_bin" --data "$work/tls-data" --key-dir "$work/tls-keys" --tls on \
  --s3-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 >"$work/tls-ready" 2>"$work/tls-server.log" &
tls_pid=$!
exec 3<"$work/tls-ready"
tls_line=""
while read -r tls_line <&3 && [[ $tls_line != "stele-server ready "* ]]; do :; done
cat <&3 >/dev/null &
exec 3<&-
tls_endpoint=$(sed -n 's/.* s3=\(https:[^ ]*\).*/\1/p' <<<"$tls_line")
ca=$work/tls-keys/tls/cert.pem
check "https: the server serves S3 over TLS with a generated certificate" \
  bash -c "[ -n '$tls_endpoint' ] && [ -s '$ca' ] || { echo 'no https endpoint: $tls_line'; cat '$work/tls-server.log'; exit 1; }"
plain_refused() { # plain HTTP to the TLS port: no HTTP status (000); curl fails on the
  # TLS alert it gets instead (exit 1: "HTTP/0.9 not allowed"), or on an empty or cut reply
  [ -n "$tls_endpoint" ] || { echo "no https endpoint"; return 1; }
  local code rc=0
  code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://${tls_endpoint#https://}/" 2>&1) || rc=$?
  echo "curl exit $rc: $code"
  [ "${code: -3}" = 000 ] && { [ "$rc" = 1 ] || [ "$rc" = 52 ] || [ "$rc" = 56 ]; }
}
check "https: plain HTTP to the TLS listener gets no HTTP answer" plain_refused
check "https: aws CLI with the certificate as CA" bash -c \
  "aws --endpoint-url '$tls_endpoint' --ca-bundle '$ca' s3 mb s3://tls-aws && \
   aws --endpoint-url '$tls_endpoint' --ca-bundle '$ca' s3 cp '$tree/a/b/odd.bin' s3://tls-aws/odd.bin && \
   aws --endpoint-url '$tls_endpoint' --ca-bundle '$ca' s3 cp s3://tls-aws/odd.bin '$work/tls-odd.back' && \
   cmp '$tree/a/b/odd.bin' '$work/tls-odd.back'"
check "https: aws CLI without the CA refuses the certificate" bash -c \
  "out=\$(aws --endpoint-url '$tls_endpoint' s3 ls 2>&1) && { echo \"listed: \$out\"; exit 1; }
   grep -Eq 'SSL|certificate' <<<\"\$out\" || { echo \"\$out\"; exit 1; }"
export RCLONE_CONFIG_STELETLS_TYPE=s3 RCLONE_CONFIG_STELETLS_PROVIDER=Other \
  RCLONE_CONFIG_STELETLS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
  RCLONE_CONFIG_STELETLS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
  RCLONE_CONFIG_STELETLS_ENDPOINT=$tls_endpoint RCLONE_CONFIG_STELETLS_FORCE_PATH_STYLE=true \
  RCLONE_CONFIG_STELETLS_REGION=us-east-1
check "https: rclone sync and check with the certificate as CA" bash -c \
  "rclone --config /dev/null --ca-cert '$ca' mkdir steletls:rclone-tls && \
   rclone --config /dev/null --ca-cert '$ca' sync '$tree' steletls:rclone-tls/backup && \
   rclone --config /dev/null --ca-cert '$ca' check '$tree' steletls:rclone-tls/backup"
check "https: restic backup, check and restore with the certificate as CA" bash -c \
  "export RESTIC_REPOSITORY='s3:$tls_endpoint/restic-tls' RESTIC_PASSWORD=stele-e2e-tls && \
   rt='restic -o s3.bucket-lookup=path --no-cache --cacert $ca' && \
   \$rt init && \$rt backup '$tree' && \$rt check && \
   \$rt restore latest --target '$work/restic-tls-back' && diff -r '$tree' '$work/restic-tls-back$tree'"

summary clients
