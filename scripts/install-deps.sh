#!/bin/sh
# Installs every Debian package the build, the tests and the demo need.
# Idempotent: when everything is present it only checks, in well under a second.
set -eu
PKGS="g++ make pkg-config protobuf-c-compiler libprotobuf-c-dev libcap-dev zlib1g-dev
      python3 python3-pytest python3-protobuf criu procps iproute2 binutils nodejs"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
