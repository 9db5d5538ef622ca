#!/bin/bash
# Build the Dockerfile's three images for real with podman, offline, and run
# them the way k8s/ runs them:
#   default (FROM scratch): size bound, every ELF file's libraries inside the
#     image, no shell/apt/dpkg/compiler, its file list as recorded in
#     tests/deploy/image-files.txt; read-only root, only /tmp writable, user
#     1000:1000, no capabilities, no-new-privileges; every endpoint; the
#     manifests' preStop (`healthd sleep`); `podman stop` exits 0 well before
#     the stop timeout; a plugin mounted at /opt/healthd/plugins; no zombie
#     under healthd as PID 1.
#   tools (--target tools): size bound, libraries, k8s/examples/exec-script.yaml's
#     script (it needs /bin/sh) passes, fails and recovers; Monitoring
#     Plugins' check_tcp and check_http run by exec pass.
#   sdk (--target sdk): size bound, libraries; a plugin built there loads in
#     the default image.
# Each has the OCI labels (version = CMakeLists.txt's) and no HEALTHCHECK.
#
#   tests/deploy/image_test.sh [SOURCE_DIR]
#
# No registry is reachable, so the base image debian:bookworm-slim is made
# with `debootstrap --variant=minbase bookworm` (from Debian's apt mirror) and
# `podman import`ed under that name.  The debootstrap tarball is cached in
# $HEALTHD_IMAGE_CACHE (default /var/cache/healthd-deploy, outside the repo):
# the first run takes ~1 min more.  The builds run apt-get inside the
# build containers (Debian's mirror is reachable).
#
# Needs (Debian 12): podman runc debootstrap curl python3-yaml; run as root.
# Env: HEALTHD_IMAGE_TAG (default localhost/healthd:test), HEALTHD_KEEP_IMAGE=1
# (keep the three images), HEALTHD_IMAGE_REUSE=1 (test images kept by an
# earlier run instead of building), HEALTHD_IMAGE_FILES_UPDATE=1 (rewrite
# image-files.txt from the built image).
set -euo pipefail

SRC=$(cd "${1:-${HEALTHD_SOURCE_DIR:-$(dirname "$0")/../..}}" && pwd)
TAG=${HEALTHD_IMAGE_TAG:-localhost/healthd:test}
TOOLS_TAG=$TAG-tools
SDK_TAG=$TAG-sdk
VERSION=$(sed -n 's/^project(healthd VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
FILES_LIST=$SRC/tests/deploy/image-files.txt
# Size bounds (podman's uncompressed size, bytes).  Measured on the
# debootstrap minbase: default 22.0 MB, tools 148.8 MB, sdk 474.9 MB
# (the base itself is 121 MB); tools and sdk with ~20 % headroom.
DEFAULT_MAX=40000000
TOOLS_MAX=180000000
SDK_MAX=570000000
BASE=docker.io/library/debian:bookworm-slim
CACHE=${HEALTHD_IMAGE_CACHE:-/var/cache/healthd-deploy}
BASE_TAR=$CACHE/debian-bookworm-minbase.tar
DRAIN_S=5        # docker/healthd.yaml shutdown.drain
STOP_TIMEOUT=30  # podman stop -t: SIGKILL after this; we want exit well before

step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

for tool in podman runc debootstrap curl python3 chroot setpriv; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install podman runc debootstrap curl)"
done
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is not installed (apt-get install python3-yaml)"
[ -n "$VERSION" ] || fail "no project version in $SRC/CMakeLists.txt"
[ "$(id -u)" = 0 ] || fail "run as root (rootful podman; debootstrap)"

WORK=$(mktemp -d /tmp/healthd-image-test.XXXXXX)
CTR=healthd-image-test-$$
MOUNTED=()
cleanup() {
	podman rm -f -t 0 "$CTR" "$CTR-z" "$CTR-e" >/dev/null 2>&1 || true
	for t in "${MOUNTED[@]}"; do podman image unmount "$t" >/dev/null 2>&1 || true; done
	[ "${HEALTHD_KEEP_IMAGE:-}" = 1 ] || podman rmi -f "$TAG" "$TOOLS_TAG" "$SDK_TAG" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# containers.conf for this kind of machine: runc (crun is not installed), and
# ulimits podman can actually set (nofile within our hard limit; nproc=4096).
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
[ "$NOFILE" -gt 1048576 ] && NOFILE=1048576
cat >"$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$WORK/containers.conf

step "base image $BASE"
if podman image exists "$BASE"; then
	echo "present"
else
	if [ ! -s "$BASE_TAR" ]; then
		echo "debootstrap --variant=minbase bookworm -> $BASE_TAR"
		mkdir -p "$CACHE"
		debootstrap --variant=minbase bookworm "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 ||
			{ tail -n 30 "$WORK/debootstrap.log"; fail "debootstrap"; }
		rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
		tar -C "$WORK/rootfs" --numeric-owner -cf "$BASE_TAR.tmp" .
		mv "$BASE_TAR.tmp" "$BASE_TAR"
		rm -rf "$WORK/rootfs"
	fi
	podman import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE" >/dev/null
	echo "imported $BASE_TAR"
fi

build() { # build TAG LOG [podman build args...]
	local tag=$1 log=$2; shift 2
	step "podman build $* -t $tag"
	if [ "${HEALTHD_IMAGE_REUSE:-}" = 1 ] && podman image exists "$tag"; then
		echo "HEALTHD_IMAGE_REUSE=1: using the $tag already built"
		return 0
	fi
	podman build --pull=never --layers=false --network=host "$@" -t "$tag" \
		-f "$SRC/Dockerfile" "$SRC" >"$WORK/$log" 2>&1 ||
		{ tail -n 60 "$WORK/$log"; fail "podman build $* ($WORK/$log)"; }
	tail -n 2 "$WORK/$log"
}
build "$TAG" build.log
build "$TOOLS_TAG" build-tools.log --target tools
build "$SDK_TAG" build-sdk.log --target sdk

declare -A SIZE
image_checks() { # image_checks TAG MAX_BYTES: metadata, size, libraries; sets ROOT
	local tag=$1 max=$2
	step "image $tag: metadata, size, libraries"
	inspect() { podman image inspect "$tag" --format "$1"; }
	for l in source version licenses description; do
		inspect "{{json .Labels}}" | python3 -c 'import json, sys; sys.exit(0 if "org.opencontainers.image.'"$l"'" in json.load(sys.stdin) else 1)' ||
			fail "$tag: no label org.opencontainers.image.$l"
	done
	[ "$(inspect '{{index .Labels "org.opencontainers.image.version"}}')" = "$VERSION" ] ||
		fail "$tag: version label is not $VERSION (CMakeLists.txt)"
	[ -n "$(inspect '{{index .Labels "org.opencontainers.image.licenses"}}')" ] || fail "$tag: empty licenses label"
	[ -n "$(inspect '{{index .Labels "org.opencontainers.image.description"}}')" ] || fail "$tag: empty description label"
	case "$(inspect '{{json .Config.Healthcheck}}')" in null | "" | "{}") ;; *) fail "$tag: has a HEALTHCHECK" ;; esac
	SIZE[$tag]=$(inspect '{{.Size}}')
	echo "labels: $(inspect '{{json .Labels}}')"
	echo "size ${SIZE[$tag]} bytes (bound $max)"
	[ "${SIZE[$tag]}" -le "$max" ] || fail "$tag: ${SIZE[$tag]} bytes, over $max"
	ROOT=$(podman image mount "$tag") || fail "podman image mount $tag"
	MOUNTED+=("$tag")
	python3 "$SRC/tests/deploy/image_libs.py" "$ROOT" || fail "$tag: a library is missing in the image (above)"
}
runs_like_a_pod() { # runs_like_a_pod TAG: USER, EXPOSE, ENTRYPOINT as k8s/ expects
	local tag=$1
	inspect() { podman image inspect "$tag" --format "$1"; }
	[ "$(inspect '{{.Config.User}}')" = "1000:1000" ] || fail "$tag: USER is $(inspect '{{.Config.User}}'), want 1000:1000"
	inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' | grep -qw '8000/tcp' || fail "$tag: EXPOSE 8000 missing"
	[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/bin/healthd"]' ] || fail "$tag: ENTRYPOINT is not exec-form /usr/bin/healthd"
	echo "user 1000:1000, expose 8000/tcp, entrypoint [/usr/bin/healthd]"
}

image_checks "$TAG" "$DEFAULT_MAX"
runs_like_a_pod "$TAG"
DEFAULT_ROOT=$ROOT
# The library check must really fail on a missing library: the same
# filesystem without libcurl.
cp -a "$DEFAULT_ROOT" "$WORK/rootfs-broken"
LIBCURL=$(find "$WORK/rootfs-broken" -name 'libcurl.so.4' -print -quit)
[ -n "$LIBCURL" ] || fail "no libcurl.so.4 in the image"
rm -f "$LIBCURL"
if python3 "$SRC/tests/deploy/image_libs.py" "$WORK/rootfs-broken" >"$WORK/broken.txt" 2>&1 ||
	! grep -q 'libcurl\.so\.4' "$WORK/broken.txt"; then
	cat "$WORK/broken.txt"; fail "the library check did not notice libcurl.so.4 missing"
fi
echo "without libcurl.so.4 the check fails, naming $(grep -c 'libcurl\.so\.4' "$WORK/broken.txt") files"
rm -rf "$WORK/rootfs-broken"
for f in /bin/sh /usr/bin/sh /bin/bash /bin/dash /usr/bin/apt /usr/bin/apt-get /usr/bin/dpkg /var/lib/dpkg /usr/bin/cc /usr/bin/gcc; do
	[ ! -e "$DEFAULT_ROOT$f" ] && [ ! -L "$DEFAULT_ROOT$f" ] || fail "$f is in the default image"
done
BINS=$(find "$DEFAULT_ROOT" -type f -perm /111 ! -name '*.so*' | sed "s|^$DEFAULT_ROOT||")
[ "$BINS" = /usr/bin/healthd ] || fail "executables other than healthd in the default image: $BINS"
for f in /usr/bin/healthd /etc/healthd/healthd.yaml /etc/passwd /etc/group /etc/nsswitch.conf \
	/etc/ssl/certs/ca-certificates.crt /usr/lib/ssl/cert.pem; do
	[ -s "$DEFAULT_ROOT$f" ] || fail "$f missing or empty in the default image"
done
[ "$(stat -c %a "$DEFAULT_ROOT/tmp")" = 1777 ] || fail "/tmp is not mode 1777"
[ "$(stat -c '%a %u' "$DEFAULT_ROOT/opt/healthd/plugins")" = "755 0" ] || fail "/opt/healthd/plugins is not 0755 root"
grep -q '^healthd:x:1000:1000:' "$DEFAULT_ROOT/etc/passwd" || fail "no uid 1000 in /etc/passwd"
grep -q '^healthd:x:1000:' "$DEFAULT_ROOT/etc/group" || fail "no gid 1000 in /etc/group"
echo "only /usr/bin/healthd executable; no shell, apt, dpkg or compiler; plugins: $(ls "$DEFAULT_ROOT/usr/lib/healthd/plugins" | tr '\n' ' ')"
# Every path in the image, recorded: growth shows in review.
(cd "$DEFAULT_ROOT" && find . -mindepth 1 | sed 's|^\.||' | LC_ALL=C sort) >"$WORK/image-files.txt"
if [ "${HEALTHD_IMAGE_FILES_UPDATE:-}" = 1 ]; then
	cp "$WORK/image-files.txt" "$FILES_LIST"
	echo "wrote $FILES_LIST ($(wc -l <"$FILES_LIST") paths)"
fi
diff -u "$FILES_LIST" "$WORK/image-files.txt" ||
	fail "the default image's files differ from tests/deploy/image-files.txt (diff above: - recorded, + built); if intended, rerun with HEALTHD_IMAGE_FILES_UPDATE=1 and commit the list"
echo "files as recorded in tests/deploy/image-files.txt ($(wc -l <"$FILES_LIST") paths)"

image_checks "$TOOLS_TAG" "$TOOLS_MAX"
runs_like_a_pod "$TOOLS_TAG"
for f in /bin/sh /usr/lib/nagios/plugins/check_tcp /usr/lib/nagios/plugins/check_http /usr/bin/healthd \
	/usr/lib/healthd/plugins/exec.so /etc/healthd/healthd.yaml; do
	[ -e "$ROOT$f" ] || fail "$f missing in the tools image"
done
[ "$(stat -c '%a %u' "$ROOT/opt/healthd/plugins")" = "755 0" ] || fail "tools: /opt/healthd/plugins is not 0755 root"
image_checks "$SDK_TAG" "$SDK_MAX"

step "run as the pod would"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NET=(-p "127.0.0.1:$PORT:8000")
HOSTNET=0
if ! podman run -d --name "$CTR" "${NET[@]}" \
	--read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=16m \
	--user 1000:1000 --cap-drop=ALL --security-opt no-new-privileges \
	"$TAG" >"$WORK/run.log" 2>&1; then
	# A machine without a working netavark/iptables: share the host's network
	# and keep healthd on loopback with HEALTHD_LISTEN.
	cat "$WORK/run.log"
	echo "port publishing failed: retrying with --network=host and HEALTHD_LISTEN=127.0.0.1:$PORT"
	HOSTNET=1
	podman rm -f "$CTR" >/dev/null 2>&1 || true
	podman run -d --name "$CTR" --network=host -e "HEALTHD_LISTEN=127.0.0.1:$PORT" \
		--read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=16m \
		--user 1000:1000 --cap-drop=ALL --security-opt no-new-privileges \
		"$TAG" >/dev/null
fi
URL=http://127.0.0.1:$PORT
code() { curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 3 "$@" || true; }

for _ in $(seq 1 60); do
	[ "$(code "$URL/api/v1/health/startup")" = 200 ] && break
	[ "$(podman inspect "$CTR" --format '{{.State.Running}}')" = true ] || { podman logs "$CTR"; fail "container exited"; }
	sleep 0.5
done
[ "$(code "$URL/api/v1/health/startup")" = 200 ] || { podman logs "$CTR"; fail "/startup never answered 200"; }

expect() { # expect CODE PATH [curl args...]
	local want=$1 path=$2; shift 2
	local got; got=$(code "$@" "$URL$path")
	[ "$got" = "$want" ] || { cat "$WORK/body"; podman logs "$CTR" | tail -n 20; fail "$path: HTTP $got, want $want"; }
	printf '  %-32s %s\n' "$path" "$got"
}
expect 200 /api/v1/health/startup
expect 200 /api/v1/health/live
expect 200 /api/v1/health/ready
expect 200 /api/v1/health/
grep -q '"status": *"healthy"' "$WORK/body" || { cat "$WORK/body"; fail "verdict is not healthy"; }
grep -qi '^content-type: application/json' "$WORK/headers" || fail "/ is not application/json"
grep -qi '^cache-control: no-store' "$WORK/headers" || fail "/ has no Cache-Control: no-store"
expect 200 /api/v1/health
expect 200 /metrics
expect 404 /api/v1/health/checks/no-such-check
expect 404 /api/v1/health/no-such-path
expect 405 /api/v1/health/ready -X POST
expect 200 /api/v1/health/live -A kube-probe/1.30 -H 'Connection: close'

step "read-only root, writable /tmp, uid 1000"
# No shell in the image to look with: from the host, through the process's
# /proc entry (its root is the container's mount namespace).
HPID=$(podman inspect "$CTR" --format '{{.State.Pid}}')
[ "$HPID" -gt 0 ] || fail "no pid"
[ "$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$HPID/status")" = 1000100010001000 ] || fail "not running as uid 1000"
[ "$(awk '/^Gid:/ {print $2 $3 $4 $5}' "/proc/$HPID/status")" = 1000100010001000 ] || fail "not running as gid 1000"
touch "/proc/$HPID/root/etc/healthd/x" 2>/dev/null && fail "root filesystem is writable (even by root)"
setpriv --reuid=1000 --regid=1000 --clear-groups touch "/proc/$HPID/root/tmp/x" || fail "/tmp is not writable by uid 1000"
rm -f "/proc/$HPID/root/tmp/x"
tr '\0' ' ' <"/proc/$HPID/cmdline" | grep -q '^/usr/bin/healthd' || fail "healthd is not PID 1"
podman exec "$CTR" /bin/sh -c true 2>/dev/null && fail "a shell runs in the default image"
echo "uid/gid 1000, / read-only, /tmp writable, PID 1 is healthd, no shell"

# The manifests' preStop runs in the image (its pause shortened to 1 s).
python3 - "$SRC/k8s/deployment.yaml" >"$WORK/prestop" <<'PY' || fail "no exec preStop in k8s/deployment.yaml"
import sys, yaml
dep = next(o for o in yaml.safe_load_all(open(sys.argv[1])) if o and o["kind"] == "Deployment")
c = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "healthd")
cmd = c["lifecycle"]["preStop"]["exec"]["command"]
assert cmd[:2] == ["/usr/bin/healthd", "sleep"], cmd
print("\n".join(cmd[:-1] + ["1"]))
PY
mapfile -t PRESTOP <"$WORK/prestop"
T0=$(date +%s.%N)
podman exec "$CTR" "${PRESTOP[@]}" || fail "the preStop command ${PRESTOP[*]} failed in the image"
ELAPSED=$(python3 -c "print(round($(date +%s.%N) - $T0, 2))")
python3 -c "import sys; sys.exit(0 if 1 <= $ELAPSED < 4 else 1)" || fail "preStop ${PRESTOP[*]} took ${ELAPSED}s"
echo "preStop ${PRESTOP[*]}: exit 0 after ${ELAPSED}s"

step "healthd ctl through podman exec (kubectl exec): drain and undrain"
ctl() { # ctl ARGS...: healthd ctl in the running container, as its user
	podman exec "$CTR" /usr/bin/healthd ctl "$@" >"$WORK/ctl.out" 2>&1 ||
		{ cat "$WORK/ctl.out"; fail "healthd ctl $*: exit $?"; }
	sed 's/^/  ctl: /' "$WORK/ctl.out"
}
expect_soon() { # expect_soon CODE PATH: within 2 s (the state is republished)
	for _ in $(seq 1 20); do
		[ "$(code "$URL$2")" = "$1" ] && break
		sleep 0.1
	done
	expect "$1" "$2"
}
ctl drain --reason "image test"
expect_soon 503 /api/v1/health/ready
grep -q '"reason": *"maintenance: image test"' "$WORK/body" ||
	{ cat "$WORK/body"; fail "/ready does not give the maintenance reason"; }
expect 200 /api/v1/health/live
ctl status
ctl undrain
expect_soon 200 /api/v1/health/ready

step "podman stop -t $STOP_TIMEOUT (SIGTERM to PID 1)"
T0=$(date +%s.%N)
podman stop -t "$STOP_TIMEOUT" "$CTR" >"$WORK/stop.log" 2>&1 &
STOP_PID=$!
sleep 1
# Draining, as a terminating pod: not ready at once, still live.
expect 503 /api/v1/health/ready
expect 200 /api/v1/health/live
wait "$STOP_PID" || { cat "$WORK/stop.log"; fail "podman stop"; }
T1=$(date +%s.%N)
ELAPSED=$(python3 -c "print(round($T1 - $T0, 2))")
RC=$(podman inspect "$CTR" --format '{{.State.ExitCode}}')
echo "exit code $RC after ${ELAPSED}s (drain ${DRAIN_S}s, SIGKILL at ${STOP_TIMEOUT}s)"
podman logs "$CTR" 2>&1 | tail -n 3
[ "$RC" = 0 ] || fail "exit code $RC, want 0"
python3 -c "import sys; sys.exit(0 if $ELAPSED < $DRAIN_S + 5 else 1)" || fail "took ${ELAPSED}s to stop"

step "a plugin host in the image: no zombie left under PID 1"
# misbehave (a test plugin, from the build tree) starts a child that ignores
# SIGTERM and hangs: its plugin host is killed 1 s past the 3 s deadline, with
# its process group.  The child, reparented to healthd as PID 1, must be
# reaped.
PLUGIN=${HEALTHD_BUILD_DIR:-}/tests/plugins/misbehave.so
[ -f "$PLUGIN" ] || fail "$PLUGIN is not built (run through ctest, or set HEALTHD_BUILD_DIR)"
cat >"$WORK/zombie.yaml" <<YAML
log: {level: info, format: json}
plugin_dirs: [/usr/lib/healthd/plugins, /opt/healthd/plugins]
checks:
  - {name: hangs, plugin: misbehave, critical: false, interval: 1h, timeout: 3s,
     options: {check: fork_hang}}
YAML
chmod 0644 "$WORK/zombie.yaml"
podman run -d --name "$CTR-z" --network=none \
	--read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=16m \
	--user 1000:1000 --cap-drop=ALL --security-opt no-new-privileges \
	-v "$PLUGIN:/opt/healthd/plugins/misbehave.so:ro" \
	-v "$WORK/zombie.yaml:/etc/healthd-test/healthd.yaml:ro" \
	"$TAG" -c /etc/healthd-test/healthd.yaml >/dev/null
trap 'podman rm -f -t 0 "$CTR-z" >/dev/null 2>&1 || true; cleanup' EXIT
procs() { # every process of the container: "pid state cmdline" (zombies too: by parentage)
	python3 - "$(podman inspect "$CTR-z" --format '{{.State.Pid}}')" <<'PY'
import os, sys
top, info = sys.argv[1], {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines() if ":" in l)
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    info[pid] = (status["PPid"].strip(), status["State"].split()[0], cmd or status["Name"].strip())
for pid, (ppid, state, cmd) in info.items():
    p = pid
    while p not in (top, "0", "1") and p in info:
        p = info[p][0]
    if p == top:
        print(pid, state, cmd)
PY
}
# (Whole outputs into variables: grep -q would end `procs` early, and
# pipefail would call that a failure.)
for _ in $(seq 1 50); do
	PS_OUT=$(procs)
	grep -q 'healthd: plugin misbehave' <<<"$PS_OUT" && break
	sleep 0.1
done
grep -q 'healthd: plugin misbehave' <<<"$PS_OUT" || { echo "$PS_OUT"; podman logs "$CTR-z"; fail "no plugin host process"; }
echo "plugin host running: $(grep 'healthd: plugin misbehave' <<<"$PS_OUT")"
for _ in $(seq 1 100); do
	LOGS=$(podman logs "$CTR-z" 2>&1)
	grep -q 'replacing its host' <<<"$LOGS" && break
	sleep 0.1
done
grep -q 'replacing its host' <<<"$LOGS" || { echo "$LOGS"; fail "the hung host was not replaced"; }
sleep 4  # the child's 2 s as a zombie, a 1 s sweep, and margin
PS_OUT=$(procs)
ZOMBIES=$(awk '$2 == "Z"' <<<"$PS_OUT" | wc -l)
sed 's/^/  /' <<<"$PS_OUT"
[ "$ZOMBIES" = 0 ] || fail "$ZOMBIES zombie(s) under PID 1"
podman stop -t 10 "$CTR-z" >/dev/null
[ "$(podman inspect "$CTR-z" --format '{{.State.ExitCode}}')" = 0 ] || { podman logs "$CTR-z" | tail; fail "exit code, want 0"; }
echo "no zombie; the orphaned child was reaped by healthd as PID 1; exit 0"

step "exec: a script from a ConfigMap (k8s/examples/exec-script.yaml), in the tools image"
# The example's ConfigMaps as kubelet mounts them, all read-only: healthd.yaml
# at /etc/healthd (0644), the scripts at /etc/healthd-scripts with the
# volume's defaultMode (0555), and the worker's directory at /run/worker.
# Only the checks' timing changes (1 s interval, failure_threshold 1), to see
# changes fast.  Proves the script finds /bin/sh and coreutils in the image
# the example names (the tools image) and runs as uid 1000 under a
# read-only root, spawned by exec.
mkdir -m 0755 "$WORK/exec-config" "$WORK/exec-scripts" "$WORK/exec-worker" "$WORK/exec-worker/queue"
python3 - "$SRC/k8s/examples/exec-script.yaml" "$WORK" <<'PY' || fail "cannot use k8s/examples/exec-script.yaml"
import os, sys, yaml
src, work = sys.argv[1:]
with open(src) as f:
    objs = list(yaml.safe_load_all(f))  # YAML 1.1, as Kubernetes: 0555 is octal
cms = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
spec = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]
vols = {v["name"]: v for v in spec["volumes"]}
healthd = next(c for c in spec["containers"] if c["name"] == "healthd")
assert healthd["image"].endswith("-tools"), f"the script needs /bin/sh, but the image is {healthd['image']}"
dirs = {"/etc/healthd": "exec-config", "/etc/healthd-scripts": "exec-scripts"}
for m in healthd["volumeMounts"]:
    if m["mountPath"] not in dirs:
        continue
    cm = vols[m["name"]]["configMap"]
    for key, value in cms[cm["name"]]["data"].items():
        if key == "healthd.yaml":
            cfg = yaml.safe_load(value)
            for check in cfg["checks"]:
                check.update(interval="1s", timeout="1s", failure_threshold=1)
                print(f"check {check['name']}: {check['options']['command']}")
            value = yaml.safe_dump(cfg, sort_keys=False)
        path = os.path.join(work, dirs[m["mountPath"]], key)
        with open(path, "w") as f:
            f.write(value)
        os.chmod(path, cm.get("defaultMode", 0o644))
        print(f"{m['mountPath']}/{key} {oct(cm.get('defaultMode', 0o644))}")
PY
touch "$WORK/exec-worker/heartbeat"
EPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "$HOSTNET" = 1 ]; then
	ENET=(--network=host -e "HEALTHD_LISTEN=127.0.0.1:$EPORT")
else
	ENET=(-p "127.0.0.1:$EPORT:8000")
fi
trap 'podman rm -f -t 0 "$CTR-z" "$CTR-e" >/dev/null 2>&1 || true; cleanup' EXIT
podman run -d --name "$CTR-e" "${ENET[@]}" \
	--read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=16m \
	--user 1000:1000 --cap-drop=ALL --security-opt no-new-privileges \
	-v "$WORK/exec-config:/etc/healthd:ro" \
	-v "$WORK/exec-scripts:/etc/healthd-scripts:ro" \
	-v "$WORK/exec-worker:/run/worker:ro" \
	"$TOOLS_TAG" >/dev/null
EURL=http://127.0.0.1:$EPORT/api/v1/health
worker_is() { # worker_is STATUS MESSAGE-PREFIX READY-CODE: wait for the check "worker" to say so
	local want="$1 $2" got=""
	for _ in $(seq 1 75); do
		got=$(curl -s --max-time 3 "$EURL/checks/worker" |
			python3 -c 'import json, sys; c = json.load(sys.stdin); print(c["status"], c["message"])' 2>/dev/null || true)
		[[ "$got" == "$want"* ]] && break
		[ -n "$got" ] || [ "$(podman inspect "$CTR-e" --format '{{.State.Running}}')" = true ] || break
		sleep 0.2
	done
	[[ "$got" == "$want"* ]] || { podman logs "$CTR-e" 2>&1 | tail -n 20; fail "check worker: '${got:-no answer}', want '$want...'"; }
	local ready; ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$EURL/ready" || true)
	[ "$ready" = "$3" ] || { podman logs "$CTR-e" 2>&1 | tail -n 20; fail "/ready: HTTP $ready, want $3 ($got)"; }
	printf '  /ready %s  %s (%ss)\n' "$ready" "$got" "$SECONDS"
}
worker_is pass "OK - last heartbeat" 200
touch -d '-10 min' "$WORK/exec-worker/heartbeat"   # the worker stalls
worker_is fail "CRITICAL - last heartbeat" 503
touch "$WORK/exec-worker/heartbeat"                # and works again
worker_is pass "OK - last heartbeat" 200
podman rm -f -t 0 "$CTR-e" >/dev/null
echo "the example's script ran under exec in the tools image: pass, fail on a stale heartbeat, pass again"

step "tools: Monitoring Plugins run by exec"
# check_tcp and check_http against a server on the host, from the tools
# image run as the pod runs it.
python3 -m http.server --bind 127.0.0.1 0 >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
trap 'kill "$HTTP_PID" 2>/dev/null || true; podman rm -f -t 0 "$CTR-z" "$CTR-e" >/dev/null 2>&1 || true; cleanup' EXIT
for _ in $(seq 1 50); do
	HPORT=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$WORK/http.log" | head -n 1)
	[ -n "$HPORT" ] && break
	sleep 0.1
done
[ -n "$HPORT" ] || { cat "$WORK/http.log"; fail "no HTTP server for check_http"; }
cat >"$WORK/tools.yaml" <<YAML
checks:
  - {name: tcp, plugin: exec, timeout: 5s,
     options: {command: "/usr/lib/nagios/plugins/check_tcp -H 127.0.0.1 -p $HPORT"}}
  - {name: http, plugin: exec, timeout: 5s,
     options: {command: "/usr/lib/nagios/plugins/check_http -H 127.0.0.1 -p $HPORT -u /"}}
YAML
chmod 0644 "$WORK/tools.yaml"
podman run --rm --network=host --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=16m \
	--user 1000:1000 --cap-drop=ALL --security-opt no-new-privileges \
	-v "$WORK/tools.yaml:/etc/healthd-test/healthd.yaml:ro" \
	"$TOOLS_TAG" -c /etc/healthd-test/healthd.yaml --once >"$WORK/tools-once.txt" 2>&1 ||
	{ cat "$WORK/tools-once.txt"; fail "check_tcp/check_http by exec did not pass in the tools image"; }
kill "$HTTP_PID" 2>/dev/null || true
grep -E '^ *(tcp|http)' "$WORK/tools-once.txt" || cat "$WORK/tools-once.txt"
echo "check_tcp and check_http passed, run by exec in the tools image"

step "sdk: a plugin built for the image loads in it"
# The Dockerfile's sdk target: the header, pkg-config file and compiler of
# the image's Debian release.  The example plugin is built there, run once
# by healthd-plugin-run, then loaded by the runtime image from
# /opt/healthd/plugins as k8s/examples/custom-plugin.yaml mounts it.
mkdir -p "$WORK/sdk-out"
podman run --rm --network=none -v "$SRC/examples/plugins/disk:/src:ro" -v "$WORK/sdk-out:/out" \
	"$SDK_TAG" sh -c 'cc -shared -fPIC -O2 -Wall -Werror $(pkg-config --cflags healthd) /src/disk.c -o /out/disk.so &&
		healthd-plugin-run /out/disk.so path=/ warn_below=0 fail_below=0' >"$WORK/sdk-run.json" ||
	{ cat "$WORK/sdk-run.json"; fail "building or running the example plugin in the sdk image"; }
grep -q '"status":"pass"' "$WORK/sdk-run.json" || { cat "$WORK/sdk-run.json"; fail "the example plugin did not pass in the sdk image"; }
chmod 0755 "$WORK/sdk-out" && chmod 0644 "$WORK/sdk-out/disk.so"
cat >"$WORK/sdk.yaml" <<YAML
plugin_dirs: [/usr/lib/healthd/plugins, /opt/healthd/plugins]
checks:
  - {name: disk, plugin: disk, options: {path: /, warn_below: "0", fail_below: "0"}}
YAML
chmod 0644 "$WORK/sdk.yaml"
podman run --rm --network=none --read-only --user 1000:1000 --cap-drop=ALL \
	-v "$WORK/sdk-out:/opt/healthd/plugins:ro" -v "$WORK/sdk.yaml:/etc/healthd-test/healthd.yaml:ro" \
	"$TAG" -c /etc/healthd-test/healthd.yaml --once >"$WORK/sdk-once.txt" 2>&1 ||
	{ cat "$WORK/sdk-once.txt"; fail "the runtime image did not load the plugin built in the sdk image"; }
echo "built in the sdk image, run there by healthd-plugin-run, loaded by the runtime image: $(tr '\n' ' ' <"$WORK/sdk-once.txt" | cut -c1-120)"

printf '\nsizes: default %s, tools %s, sdk %s bytes\n' "${SIZE[$TAG]}" "${SIZE[$TOOLS_TAG]}" "${SIZE[$SDK_TAG]}"
printf '\nimage test: OK (%ss)\n' "$SECONDS"
