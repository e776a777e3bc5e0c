#!/usr/bin/env bash
# Makes the certificates kubeadm's certs phase makes for a local etcd, with openssl, for a device
# without kubeadm: under DIR (default /etc/kubernetes/pki/etcd) ca.crt/ca.key (CN etcd-ca),
# server and peer (CN the member's name; server and client auth; names localhost, the member's
# name, 127.0.0.1 and ::1) and healthcheck-client (client auth only, for etcdctl and probes).
# RSA 2048 and 0600 keys, as kubeadm. Existing files are kept: run it once per member.
# For a second member of a cluster, put the first member's ca.crt and ca.key in its DIR first (as
# `kubeadm join --control-plane` copies the etcd CA): the member's own certificates are then
# signed by that CA, which every member's peer and client checks trust.
#   make-etcd-pki.sh [DIR] [MEMBER-NAME]
set -euo pipefail

dir="${1:-/etc/kubernetes/pki/etcd}"
name="${2:-$(hostname | tr '[:upper:]' '[:lower:]')}"
mkdir -p "$dir"
cd "$dir"
if [ -e server.crt ]; then
  echo "make-etcd-pki: $dir/server.crt exists: nothing made" >&2
  exit 0
fi
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -e ca.crt ] && [ -e ca.key ]; then
  made="the server, peer and healthcheck-client certificates (signed by the etcd CA there)"
elif [ -e ca.crt ] || [ -e ca.key ]; then
  echo "make-etcd-pki: $dir holds one of ca.crt and ca.key without the other: nothing made" >&2
  exit 1
else
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -sha256 -subj /CN=etcd-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign 2>/dev/null
  made="the etcd CA, server, peer and healthcheck-client certificates"
fi

# One certificate signed by the etcd CA: file name, subject, extensions.
signed() {
  printf '%s\n' "$3" >"$work/$1.ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -subj "$2" -out "$work/$1.csr" 2>/dev/null
  openssl x509 -req -in "$work/$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -CAserial "$work/ca.srl" \
    -days 365 -sha256 -extfile "$work/$1.ext" -out "$1.crt" 2>/dev/null
}
serving="keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1"
signed server "/CN=$name" "$serving"
signed peer "/CN=$name" "$serving"
signed healthcheck-client /CN=kube-etcd-healthcheck-client "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
chmod 0644 ./*.crt
echo "make-etcd-pki: made $made in $dir" >&2
