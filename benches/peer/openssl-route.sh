#!/usr/bin/env bash
# The manual route meshc replaces, for the PKI part alone: a shared root and one intermediate
# CA per cluster with openssl (ECDSA P-256, Istio's plug-in CA profile, as in Istio's
# tools/certs Makefile), then `kubectl create secret generic cacerts --dry-run` per cluster.
# Usage: benches/peer/openssl-route.sh CLUSTERS   (prints the wall time in seconds)
set -euo pipefail
clusters="${1:-200}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
start=$(date +%s%N)
openssl ecparam -name prime256v1 -genkey -noout -out root-key.pem
openssl req -x509 -new -key root-key.pem -sha256 -days 3650 -subj "/O=Istio/CN=Root CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out root-cert.pem
for i in $(seq 0 $((clusters - 1))); do
  c="c$i"
  mkdir "$c"
  openssl ecparam -name prime256v1 -genkey -noout -out "$c/ca-key.pem"
  openssl req -new -key "$c/ca-key.pem" -subj "/O=Istio/CN=Intermediate CA/L=$c" -out "$c/csr.pem"
  printf 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\nsubjectAltName=DNS:istiod.istio-system.svc\n' > "$c/ext.cnf"
  openssl x509 -req -in "$c/csr.pem" -CA root-cert.pem -CAkey root-key.pem -CAcreateserial \
    -days 730 -sha256 -extfile "$c/ext.cnf" -out "$c/ca-cert.pem" 2>/dev/null
  cat "$c/ca-cert.pem" root-cert.pem > "$c/cert-chain.pem"
  kubectl create secret generic cacerts -n istio-system --dry-run=client -o yaml \
    --from-file="$c/ca-cert.pem" --from-file="$c/ca-key.pem" \
    --from-file=root-cert.pem --from-file="$c/cert-chain.pem" > "$c/cacerts.yaml"
done
end=$(date +%s%N)
echo "$clusters clusters: $(( (end - start) / 1000000 )) ms"
