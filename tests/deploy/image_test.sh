#!/bin/bash
# Build the Dockerfile for real with podman, offline, and run the image the way
# k8s/deployment.yaml runs it: read-only root, only /tmp writable, user
# 1000:1000, no capabilities, no-new-privileges.  Probe every endpoint, then
# `podman stop` it and require exit 0 well before the stop timeout.  Last, run
# k8s/examples/exec-script.yaml's script and config, mounted as kubelet would:
# the exec plugin's check passes, fails when the condition changes, recovers.
#
#   tests/deploy/image_test.sh [SOURCE_DIR]
#
# No registry is reachable, so the base image debian:bookworm-slim is made
# with `debootstrap --variant=minbase bookworm` (from Debian's apt mirror) and
# `podman import`ed under that name.  The debootstrap tarball is cached in
# $HEALTHD_IMAGE_CACHE (default /var/cache/healthd-deploy, outside the repo):
# the first run takes ~1 min more.  The build itself runs apt-get inside the
# build container (Debian's mirror is reachable).
#
# Needs (Debian 12): podman runc debootstrap curl; run as root.
# Env: HEALTHD_IMAGE_TAG (default localhost/healthd:test), HEALTHD_KEEP_IMAGE=1.
set -euo pipefail

SRC=$(cd "${1:-${HEALTHD_SOURCE_DIR:-$(dirname "$0")/../..}}" && pwd)
TAG=${HEALTHD_IMAGE_TAG:-localhost/healthd:test}
BASE=docker.io/library/debian:bookworm-slim
CACHE=${HEALTHD_IMAGE_CACHE:-/var/cache/healthd-deploy}
BASE_TAR=$CACHE/debian-bookworm-minbase.tar
DRAIN_S=5        # docker/healthd.yaml shutdown.drain
STOP_TIMEOUT=30  # podman stop -t: SIGKILL after this; we want exit well before

step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

for tool in podman runc debootstrap curl python3; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install podman runc debootstrap curl)"
done
[ "$(id -u)" = 0 ] || fail "run as root (rootful podman; debootstrap)"

WORK=$(mktemp -d /tmp/healthd-image-test.XXXXXX)
CTR=healthd-image-test-$$
cleanup() {
	podman rm -f -t 0 "$CTR" >/dev/null 2>&1 || true
	[ "${HEALTHD_KEEP_IMAGE:-}" = 1 ] || podman rmi -f "$TAG" >/dev/null 2>&1 || true
	podman rmi -f "$TAG-sdk" >/dev/null 2>&1 || true
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

step "podman build --pull=never -t $TAG $SRC"
podman build --pull=never --layers=false --network=host -t "$TAG" -f "$SRC/Dockerfile" "$SRC" >"$WORK/build.log" 2>&1 ||
	{ tail -n 60 "$WORK/build.log"; fail "podman build"; }
tail -n 3 "$WORK/build.log"

step "image metadata"
inspect() { podman image inspect "$TAG" --format "$1"; }
[ "$(inspect '{{.Config.User}}')" = "1000:1000" ] || fail "USER is $(inspect '{{.Config.User}}'), want 1000:1000"
inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' | grep -qw '8000/tcp' || fail "EXPOSE 8000 missing"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/bin/healthd"]' ] || fail "ENTRYPOINT is not exec-form /usr/bin/healthd"
echo "user 1000:1000, expose 8000/tcp, entrypoint [/usr/bin/healthd]"
in_image() { podman run --rm --network=none --entrypoint /bin/sh "$TAG" -c "$1"; }
[ -z "$(in_image 'command -v cc gcc cmake make 2>/dev/null || true')" ] || fail "a compiler or build tool is in the runtime image"
in_image 'ls /usr/lib/healthd/plugins/' | tr '\n' ' '; echo
in_image 'test -d /opt/healthd/plugins && test -f /etc/healthd/healthd.yaml' || fail "plugin or config dir missing"
echo "no compiler; plugins and /etc/healthd/healthd.yaml present; image size $(inspect '{{.Size}}') bytes"

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
[ "$(podman exec "$CTR" id -u)" = 1000 ] || fail "not running as uid 1000"
podman exec "$CTR" sh -c 'touch /etc/healthd/x' 2>/dev/null && fail "root filesystem is writable"
podman exec "$CTR" sh -c 'touch /tmp/x && rm /tmp/x' || fail "/tmp is not writable"
[ "$(podman inspect "$CTR" --format '{{.State.Pid}}')" -gt 0 ] || fail "no pid"
podman exec "$CTR" sh -c 'cat /proc/1/cmdline | tr "\0" " "' | grep -q '^/usr/bin/healthd' || fail "healthd is not PID 1"
echo "uid 1000, / read-only, /tmp writable, PID 1 is healthd"

podman exec "$CTR" /bin/sh -c 'sleep 0' || fail "the preStop command /bin/sh -c 'sleep ...' cannot run in the image"

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
procs() { # every process: "pid state name"
	podman exec "$CTR-z" sh -c 'for d in /proc/[0-9]*; do
		s=$(cat $d/stat 2>/dev/null) || continue
		echo "${s%% (*} $(echo "${s##*) }" | cut -d" " -f1) $(tr "\0" " " <$d/cmdline)"
	done'
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

step "exec: a script from a ConfigMap (k8s/examples/exec-script.yaml)"
# The example's ConfigMaps as kubelet mounts them, all read-only: healthd.yaml
# at /etc/healthd (0644), the scripts at /etc/healthd-scripts with the
# volume's defaultMode (0555), and the worker's directory at /run/worker.
# Only the checks' timing changes (1 s interval, failure_threshold 1), to see
# changes fast.  Proves the script finds /bin/sh and coreutils in the image
# and runs as uid 1000 under a read-only root, spawned by exec.
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is not installed (apt-get install python3-yaml)"
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
	"$TAG" >/dev/null
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
echo "the example's script ran under exec in the image: pass, fail on a stale heartbeat, pass again"

step "sdk: a plugin built for the image loads in it"
# The Dockerfile's sdk target: the header, pkg-config file and compiler of
# the image's Debian release.  The example plugin is built there, run once
# by healthd-plugin-run, then loaded by the runtime image from
# /opt/healthd/plugins as k8s/examples/custom-plugin.yaml mounts it.
podman build --pull=never --layers=false --network=host --target sdk -t "$TAG-sdk" \
	-f "$SRC/Dockerfile" "$SRC" >"$WORK/build-sdk.log" 2>&1 ||
	{ tail -n 40 "$WORK/build-sdk.log"; fail "podman build --target sdk"; }
mkdir -p "$WORK/sdk-out"
podman run --rm --network=none -v "$SRC/examples/plugins/disk:/src:ro" -v "$WORK/sdk-out:/out" \
	"$TAG-sdk" sh -c 'cc -shared -fPIC -O2 -Wall -Werror $(pkg-config --cflags healthd) /src/disk.c -o /out/disk.so &&
		healthd-plugin-run /out/disk.so path=/ warn_below=0 fail_below=0' >"$WORK/sdk-run.json" ||
	{ cat "$WORK/sdk-run.json"; fail "building or running the example plugin in the sdk image"; }
grep -q '"status":"pass"' "$WORK/sdk-run.json" || { cat "$WORK/sdk-run.json"; fail "the example plugin did not pass in the sdk image"; }
podman rmi -f "$TAG-sdk" >/dev/null 2>&1 || true
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

printf '\nimage test: OK (%ss)\n' "$SECONDS"
