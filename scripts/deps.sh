#!/usr/bin/env bash
# Install what building, testing and the demo need on Debian 12.
# Runs as root, or through sudo when it is there.
set -euo pipefail

packages=(
	build-essential cmake pkg-config git ca-certificates
	clang llvm
	libmicrohttpd-dev libltdl-dev libyaml-dev libjson-c-dev
	libpq-dev libhiredis-dev libcurl4-openssl-dev libcunit1-dev
	libc-ares-dev libssl-dev libmariadb-dev
	python3 python3-yaml python3-jsonschema curl openssl procps
	postgresql redis-server
	nginx-light wrk
	podman runc debootstrap
	prometheus chromium
	dnsmasq-base monitoring-plugins-basic scdoc python3-grpcio gnuplot-nox
	mariadb-server
)
# The deployment tests run on Node.js 20 or newer; Debian's is enough where
# the machine has none.
command -v node >/dev/null || packages+=(nodejs npm)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "installing: ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
