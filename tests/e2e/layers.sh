#!/usr/bin/env bash
# scripts/check-layers holds on this tree, and fails on planted violations of each kind
# (a layer using one below it, the core importing an HTTP crate, a heavy dependency
# outside its module). Prints one line per check and "layers: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. tests/e2e/check.sh
planted() { # planted FILE LINE: a copy of src/ with LINE put first in FILE fails the check
  rm -rf "$work/src" && cp -r src "$work/src" && sed -i "1i $2" "$work/src/$1"
  local out
  out=$(scripts/check-layers "$work/src") && { echo "$out"; return 1; }
  echo "$out"
  grep -q "^src/$1:1: " <<<"$out"
}
appended() { # appended FILE LINE: a copy of src/ with LINE added at the end of FILE fails
  rm -rf "$work/src" && cp -r src "$work/src" && echo "$2" >>"$work/src/$1"
  local out
  out=$(scripts/check-layers "$work/src") && { echo "$out"; return 1; }
  echo "$out"
  grep -q "^src/$1:" <<<"$out"
}
check "the dependency rule holds on src/" scripts/check-layers
check "meta using store is refused" planted meta/record.rs "use crate::store::Store;"
check "meta using disk (the old record.rs) is refused" planted meta/record.rs "use crate::disk::shard::Hash;"
check "the core importing axum is refused" planted store/mod.rs "use axum::Router;"
check "rocksdb outside meta/rocks.rs is refused" planted meta/mod.rs "use rocksdb::DB;"
check "ring outside crypto.rs is refused" planted identity/mod.rs "use ring::rand;"
check "reed_solomon_erasure outside the codec is refused" planted store/write.rs "use reed_solomon_erasure::Error;"
check "openraft outside the consensus module is refused" planted store/write.rs "use openraft::Raft;"
check "a grouped import of a lower layer is refused" planted meta/record.rs "use crate::{types::Hash, disk::Disk};"
check "code after a #[cfg(test)] helper is still checked" \
  appended meta/mod.rs "pub fn leak() { let _ = crate::store::Store::open; }"
check "std::fs outside the disks and the configuration is refused" \
  planted store/write.rs "use std::fs::File;"
tools_with_core() { # a tools manifest that depends on the core fails the check
  sed 's/^\[dependencies\]$/[dependencies]\nstele.workspace = true/' tools/Cargo.toml >"$work/Cargo.toml"
  local out
  out=$(STELE_TOOLS_MANIFEST="$work/Cargo.toml" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "stelectl depends on the core" <<<"$out"
}
check "stelectl depending on the core (RocksDB) is refused" tools_with_core
api_with() { # api_with CRATE: an api manifest that depends on CRATE fails the check
  sed "s/^\[dependencies\]$/[dependencies]\n$1.workspace = true/" api/Cargo.toml >"$work/Cargo.toml"
  local out
  out=$(STELE_API_MANIFEST="$work/Cargo.toml" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "wire types depend on \`$1\`" <<<"$out"
}
check "the admin API's wire types depending on the core are refused" api_with stele
check "the admin API's wire types depending on axum are refused" api_with axum
check "the admin API's wire types depending on http are refused" api_with http
client_copy() { # a copy of client/ (manifest and sources) in $work/client
  rm -rf "$work/client" && mkdir -p "$work/client" && cp -r client/Cargo.toml client/src "$work/client/"
}
client_with() { # client_with CRATE: a client manifest that depends on CRATE fails the check
  client_copy
  sed -i "s/^\[dependencies\]$/[dependencies]\n$1.workspace = true/" "$work/client/Cargo.toml"
  local out
  out=$(STELE_CLIENT_MANIFEST="$work/client/Cargo.toml" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "the client depends on \`$1\`" <<<"$out"
}
check "the HTTP client depending on the core is refused" client_with stele
check "the HTTP client depending on s3s is refused" client_with s3s
check "the HTTP client depending on axum is refused" client_with axum
client_using() { # client_using LINE: a client source with LINE added fails the check
  client_copy
  echo "$1" >>"$work/client/src/s3.rs"
  local out
  out=$(STELE_CLIENT_MANIFEST="$work/client/Cargo.toml" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "client/src/s3.rs:.*the client uses" <<<"$out"
}
check "the HTTP client importing the core is refused" client_using "use stele::Node;"
check "the HTTP client naming s3s is refused" client_using "fn f() { let _ = s3s::S3Error::new; }"
server_blocking() { # a server source that spawns blocking work fails the check
  rm -rf "$work/server" && cp -r server/src "$work/server"
  echo 'async fn f() { let _ = tokio::task::spawn_blocking(|| ()).await; }' >>"$work/server/s3/bucket.rs"
  local out
  out=$(STELE_SERVER_SRC="$work/server" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "s3/bucket.rs:.*the server spawns blocking work" <<<"$out"
}
check "the server spawning blocking work itself is refused" server_blocking
listener_past_node() { # an S3 handler calling the blocking engine directly fails the check
  rm -rf "$work/server" && cp -r server/src "$work/server"
  echo 'fn f(s3: &SteleS3) { let _ = s3.node.store().buckets(); }' >>"$work/server/s3/bucket.rs"
  local out
  out=$(STELE_SERVER_SRC="$work/server" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "s3/bucket.rs:.*past \`stele::Node\`" <<<"$out"
}
check "an S3 handler calling the blocking engine past Node is refused" listener_past_node
tlog_copy() { # a copy of tlog/ (manifest and sources) in $work/tlog
  rm -rf "$work/tlog" && mkdir -p "$work/tlog" && cp -r tlog/Cargo.toml tlog/src "$work/tlog/"
}
tlog_with() { # tlog_with CRATE: a tlog manifest that depends on CRATE fails the check
  tlog_copy
  sed -i "s/^\[dependencies\]$/[dependencies]\n$1.workspace = true/" "$work/tlog/Cargo.toml"
  local out
  out=$(STELE_TLOG_MANIFEST="$work/tlog/Cargo.toml" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "the audit trail's formats depend on \`$1\`" <<<"$out"
}
check "the audit trail's formats depending on the core are refused" tlog_with stele
check "the audit trail's formats depending on tokio are refused" tlog_with tokio
tlog_ring() { # ring outside tlog/src/crypto.rs fails the check
  tlog_copy
  echo "use ring::digest;" >>"$work/tlog/src/merkle.rs"
  local out
  out=$(STELE_TLOG_MANIFEST="$work/tlog/Cargo.toml" scripts/check-layers) && { echo "$out"; return 1; }
  echo "$out"
  grep -q "merkle.rs:.*\`ring\` outside tlog/src/crypto.rs" <<<"$out"
}
check "ring outside the audit trail's crypto module is refused" tlog_ring
summary layers
