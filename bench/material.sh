#!/usr/bin/env bash
# Writes the credentials the security benchmarks give the gateway and nginx alike, into DIR
# (kept if already there):
#   htpasswd.bcrypt   user `bench`, password `bench-password`, bcrypt at htpasswd -B's
#                     default cost (5); BCRYPT_COST overrides it
#   htpasswd.sha      the same user as a {SHA} (unsalted SHA-1) line
#   ca.pem            an ECDSA P-256 CA (key ca.key)
#   server.pem/.key   a server certificate for `localhost` and 127.0.0.1, signed by the CA
#   client.pem/.key   a client certificate (CN=bench-client, clientAuth), signed by the CA
#
#   bench/material.sh DIR
#
# Needs: htpasswd (Debian apache2-utils), openssl.
set -euo pipefail
d=$1; mkdir -p "$d"; cd "$d"
[ -s htpasswd.bcrypt ] || htpasswd -nbB -C "${BCRYPT_COST:-5}" bench bench-password | sed '/^$/d' >htpasswd.bcrypt
[ -s htpasswd.sha ] || htpasswd -nbs bench bench-password | sed '/^$/d' >htpasswd.sha
[ -s client.pem ] && exit 0
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 7 -subj "/CN=bench-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
leaf() { # NAME CN EXTENSIONS
  openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf '%b\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf server localhost "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client bench-client "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
