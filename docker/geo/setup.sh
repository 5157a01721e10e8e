#!/bin/sh
# The `setup` service of docker/geo/compose.yaml: makes the cluster on a1 and leaves one
# join token per other node in /tokens, once. Needs only stelectl and a1's admin listener.
set -eu
export STELE_ADMIN_URL=http://a1:9001
until stelectl --json status >/dev/null 2>&1; do sleep 1; done
if [ ! -e /tokens/done ]; then
  fp=$(stelectl --json cluster init | sed -n 's/.*"ca_fingerprint": *"\([0-9a-f]*\)".*/\1/p')
  for node in a2 b1 b2 c1 c2; do
    token=$(stelectl --json cluster join-token | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
    printf 'JOIN=%s\nSTELE_JOIN_TOKEN=%s\nCA_FINGERPRINT=%s\n' "172.28.0.11:9100" "$token" "$fp" \
      > "/tokens/$node"
  done
  touch /tokens/done
fi
stelectl cluster status
