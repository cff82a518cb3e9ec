#!/usr/bin/env bash
# A private CA and the certificates docker-compose.tls.yml uses, written to
# deploy/tls/certs/ (or $OUTREACH_CERTS_DIR), which git and the image's build
# context both ignore:
#
#   ca.pem, ca.key              the CA; its key is used only here
#   kafka.keystore.pem          Kafka's key and certificate in one file (Kafka's
#                               PEM key store; kafka.pem, the certificate alone);
#                               names kafka, localhost, 127.0.0.1
#   postgres.pem, postgres.key  Postgres' (postgres, localhost, 127.0.0.1)
#   outreach.pem, outreach.key  the pipeline's client certificate for Kafka
#   operator.pem, operator.key  a client certificate for tools on the host
#
# Keys are EC P-256 in PKCS#8 PEM, unencrypted (Kafka, librdkafka, Postgres
# and sqlx all read that form), mode 0600, each owned by the user its
# container runs as: 999 (postgres in postgres:16), 1000 (appuser in
# apache/kafka), 10001 (outreach, see the Dockerfile); operator.key by you.
# Postgres refuses a key that others can read, and outreach warns about one.
# Changing owners takes root: run it with sudo; run as another user, it
# writes everything and prints the chown commands still to run.
#
# Usage: deploy/tls/make-certs.sh [DAYS]   (default 825; again to replace all)
set -euo pipefail
cd "$(dirname "$0")"

days="${1:-825}"
out="${OUTREACH_CERTS_DIR:-certs}"
me="${SUDO_UID:-$(id -u)}"

made=(ca.pem ca.key kafka.pem kafka.keystore.pem postgres.pem postgres.key
      outreach.pem outreach.key operator.pem operator.key)
mkdir -p -m 0700 "$out"
cd "$out"
rm -f "${made[@]}"
umask 077

key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

# The CA.
key ca
openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=outreach compose CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

# NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]: NAME.key and NAME.pem.
signed() {
  key "$1"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$3"
    if [ -n "${4:-}" ]; then echo "subjectAltName=$4"; fi
  } >"$1.ext"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm "$1.csr" "$1.ext"
}

# Kafka's is a client certificate too: the one-shot topics service
# authenticates with it (the listener requires client certificates).
signed kafka kafka "serverAuth,clientAuth" "DNS:kafka,DNS:localhost,IP:127.0.0.1"
signed postgres postgres "serverAuth" "DNS:postgres,DNS:localhost,IP:127.0.0.1"
signed outreach outreach "clientAuth"
signed operator operator "clientAuth"
cat kafka.key kafka.pem >kafka.keystore.pem
rm kafka.key

# What each service checks, checked here first.
for name in kafka postgres; do
  for host in "$name" localhost; do
    openssl verify -CAfile ca.pem -verify_hostname "$host" "$name.pem" >/dev/null
  done
done
for name in outreach operator; do
  openssl verify -CAfile ca.pem -purpose sslclient "$name.pem" >/dev/null
done

chmod 0644 ./*.pem
chmod 0600 ./*.key kafka.keystore.pem
pending=()
for owned in "postgres.key 999" "kafka.keystore.pem 1000" "outreach.key 10001" \
             "ca.key $me" "operator.key $me" "operator.pem $me" "ca.pem $me" \
             "kafka.pem $me" "postgres.pem $me" "outreach.pem $me"; do
  read -r file uid <<<"$owned"
  if [ "$(id -u)" = 0 ]; then
    chown "$uid" "$file"
  elif [ "$uid" != "$(id -u)" ]; then
    pending+=("chown $uid $PWD/$file")
  fi
done
if [ "$(id -u)" = 0 ]; then chown "$me" .; fi

echo "certificates in $PWD (valid $days days)"
if [ "${#pending[@]}" -gt 0 ]; then
  echo "not root: each key must belong to the user its container runs as; run"
  printf '  sudo %s\n' "${pending[@]}"
fi
