#!/bin/sh
# rootfs.sh DEST — the default image's whole root filesystem, assembled in
# DEST from the Debian stage it runs in (the Dockerfile's `rootfs` stage),
# where healthd is installed with its runtime packages.  DEST gets healthd,
# its plugins, exactly the shared libraries they load, and the few files
# those libraries read at run time; no shell, no package manager.  Then
# everything is checked inside DEST with chroot: each ELF file's libraries
# resolve there, and healthd runs, as uid 1000, on the shipped config.
set -eu

R=$1
PLUGINS=/usr/lib/healthd/plugins
[ ! -e "$R" ] || { echo "rootfs.sh: $R exists" >&2; exit 1; }
mkdir -p "$R"

is_elf() { [ "$(head -c 4 "$1")" = "$(printf '\177ELF')" ]; }

# put PATH: PATH into DEST at its own path, through the same symlinks.  A
# symlink into another directory (ld.so's /usr/lib64 -> /lib/<triplet>) is
# kept, with its target; one within a directory (libfoo.so.1 ->
# libfoo.so.1.2.3) is copied as the file it names: the soname is all the
# loader asks for.
put() {
	dir=$(realpath "$(dirname "$1")")
	f=$dir/$(basename "$1")
	if [ -e "$R$f" ] || [ -L "$R$f" ]; then
		return 0
	fi
	mkdir -p "$R$dir"
	if [ -L "$f" ] && [ "$(realpath "$(dirname "$(readlink -f "$f")")")" != "$dir" ]; then
		cp -P "$f" "$R$f"
		put "$(readlink -f "$f")"
	else
		cp -L --preserve=mode "$f" "$R$f"
	fi
}

# Debian's merged /usr: /lib and /lib64 are links into /usr, and ld.so is
# named through /lib64 in every binary.
mkdir -p "$R/usr/bin" "$R/usr/lib"
for d in /lib /lib32 /lib64 /libx32; do
	if [ -L "$d" ]; then
		mkdir -p "$R$(realpath "$d")"
		cp -P "$d" "$R$d"
	fi
done

put /usr/bin/healthd
mkdir -p "$R$PLUGINS"
for p in "$PLUGINS"/*.so; do put "$p"; done

# Loaded with dlopen(), which ldd cannot see:
# - libmariadb's client authentication plugins: caching_sha2_password is
#   MySQL 8's default (a mysql check cannot log in without it),
#   sha256_password, client_ed25519 (MariaDB), mysql_clear_password and
#   dialog.  Each needs only libc and libcrypto, already here.  (No
#   auth_gssapi_client: not part of libmariadb3.)
mariadb=$(ldd "$PLUGINS/mysql.so" | awk '$1 ~ /^libmariadb\.so/ {print $3}')
[ -n "$mariadb" ] || { echo "rootfs.sh: mysql.so does not link libmariadb" >&2; exit 1; }
for p in "$(dirname "$mariadb")"/libmariadb3/plugin/*.so; do put "$p"; done
# Not shipped, on purpose: glibc's gconv modules (nothing calls iconv; the
# C locale needs none), libnss_* (glibc 2.34 and later have files and dns
# built in), OpenSSL's engines and legacy provider (Debian's openssl.cnf
# loads neither), p11-kit modules and SASL plugins (GnuTLS, LDAP and SASL
# are only there because libcurl and libpq link them; healthd's TLS is
# OpenSSL's), Kerberos config (libpq's GSSAPI finds no credentials and
# goes on without).

# The ldd closure of every ELF file so far (dlopen()ed ones included).
find "$R" -type f | while read -r f; do
	if is_elf "$f"; then ldd "${f#"$R"}"; fi
done | awk '/=>/ && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u >/tmp/libs
while read -r lib; do put "$lib"; done </tmp/libs

# TLS: the CA bundle (ca-certificates) where OpenSSL (cert.pem, certs/ under
# OPENSSLDIR=/usr/lib/ssl), libcurl (CURL_CA_BUNDLE) and everyone else
# look; Debian's openssl.cnf (its SECLEVEL and defaults).
put /etc/ssl/certs/ca-certificates.crt
put /etc/ssl/openssl.cnf
mkdir -p "$R/usr/lib/ssl"
for l in cert.pem certs openssl.cnf; do cp -P "/usr/lib/ssl/$l" "$R/usr/lib/ssl/$l"; done

# The copyright files of the Debian packages shipped: their licences (LGPL,
# GPL, ...) ask for them with the binaries.
find "$R" -type f -path "$R/usr/lib/*" ! -path "$R$PLUGINS/*" | while read -r f; do
	p=${f#"$R"}
	dpkg -S "$p" 2>/dev/null || dpkg -S "${p#/usr}" 2>/dev/null ||
		dpkg -S "*/${p##*/}" 2>/dev/null || echo "rootfs.sh: no package owns $p" >&2
done | cut -d: -f1 | tr ', ' '\n\n' | sed '/^$/d' | sort -u >/tmp/pkgs
echo ca-certificates >>/tmp/pkgs
echo openssl >>/tmp/pkgs
while read -r pkg; do
	if [ -f "/usr/share/doc/$pkg/copyright" ]; then
		put "/usr/share/doc/$pkg/copyright"
	fi
done </tmp/pkgs

# Users, name service, config, directories.
mkdir -p "$R/etc/healthd"
printf '%s\n' 'root:x:0:0:root:/:/sbin/nologin' \
	'healthd:x:1000:1000:healthd:/nonexistent:/sbin/nologin' >"$R/etc/passwd"
printf '%s\n' 'root:x:0:' 'healthd:x:1000:' >"$R/etc/group"
# hosts: /etc/hosts first, then DNS (resolv.conf comes from the runtime).
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' \
	'networks: files' 'protocols: files' 'services: files' >"$R/etc/nsswitch.conf"
cp --preserve=mode /etc/healthd/healthd.yaml "$R/etc/healthd/healthd.yaml"
install -d -m 1777 "$R/tmp"
# Where custom plugins are mounted; root-owned and 0755 like every plugin
# dir (healthd refuses plugins writable by others).
install -d -m 0755 "$R/opt/healthd/plugins"
chown -R 0:0 "$R"
chmod 0755 "$R$PLUGINS" "$R/etc/healthd"
chmod 0644 "$R/etc/healthd/healthd.yaml" "$R/etc/passwd" "$R/etc/group" "$R/etc/nsswitch.conf"

# Checks, inside DEST: every ELF file's libraries resolve there (ld.so
# --list is ldd), nothing to run a command with, and healthd works.
interp=$(ldd /usr/bin/healthd | awk '$1 ~ /^\// {print $1; exit}')
bad=0
for f in $(find "$R" -type f); do
	is_elf "$f" || continue
	if ! out=$(chroot "$R" "$interp" --list "${f#"$R"}" 2>&1) ||
		printf '%s\n' "$out" | grep -q 'not found'; then
		echo "rootfs.sh: ${f#"$R"}: $out" >&2
		bad=1
	fi
done
[ "$bad" = 0 ]
for f in /bin/sh /usr/bin/sh /bin/bash /usr/bin/dash /usr/bin/apt /usr/bin/dpkg /usr/bin/cc; do
	if [ -e "$R$f" ] || [ -L "$R$f" ]; then echo "rootfs.sh: $f is in the image" >&2; exit 1; fi
done
chroot --userspec=1000:1000 "$R" /usr/bin/healthd --version
chroot --userspec=1000:1000 "$R" /usr/bin/healthd -c /etc/healthd/healthd.yaml --check-config
chroot --userspec=1000:1000 "$R" /usr/bin/healthd plugins /usr/lib/healthd/plugins >/dev/null
du -sh "$R"
