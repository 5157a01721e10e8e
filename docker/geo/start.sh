#!/bin/sh
# One node of docker/geo/compose.yaml: two disks in site $SITE; node a1 makes the cluster,
# the others wait for the join token the `setup` service leaves for them in /tokens.
set -eu
mkdir -p /var/lib/stele/disk0 /var/lib/stele/disk1
cat > /tmp/stele.toml <<TOML
[[disk]]
path = "/var/lib/stele/disk0"
site = "$SITE"

[[disk]]
path = "/var/lib/stele/disk1"
site = "$SITE"
TOML
set -- --config /tmp/stele.toml --cluster-addr "$RPC_ADDR" \
  --s3-addr 0.0.0.0:9000 --admin-addr 0.0.0.0:9001
# A member (it holds its certificate) restarts as it is; a1 starts alone the first time.
if [ "$NODE" = a1 ] || [ -e /var/lib/stele-keys/cluster ]; then
  exec stele-server "$@"
fi
while [ ! -s "/tokens/$NODE" ]; do sleep 1; done
# JOIN, STELE_JOIN_TOKEN, CA_FINGERPRINT
. "/tokens/$NODE"
export STELE_JOIN_TOKEN
exec stele-server "$@" --join "$JOIN" --ca-fingerprint "$CA_FINGERPRINT"
