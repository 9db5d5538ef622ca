# healthd container images, three variants of one Dockerfile:
#
#   podman build -t healthd:0.1.0 .                       the default: FROM scratch, healthd,
#                                                         its plugins and libraries; no shell
#   podman build --target tools -t healthd:0.1.0-tools .  plus Debian, /bin/sh and Monitoring
#                                                         Plugins, for exec checks that need them
#   podman build --target sdk -t healthd-sdk:0.1.0 .      a compiler and the header, for plugins
#   podman run --rm -p 8000:8000 healthd:0.1.0            (docker build/run alike)
#
# Runs as 1000:1000 with a read-only root filesystem (only /tmp needs to be
# writable, and healthd itself writes nothing); healthd is PID 1 and handles
# SIGTERM itself: /ready turns 503, then it exits 0 after shutdown.drain.
# The Kubernetes preStop pause is `healthd sleep 15`: no shell needed.
# tests/deploy/image_test.sh builds and runs each the way k8s/ does.

ARG DEBIAN_IMAGE=debian:bookworm-slim
# The project's version (CMakeLists.txt); the build fails if they differ.
ARG VERSION=0.1.0
# Where the source lives, for the org.opencontainers.image.source label
# (--build-arg SOURCE=URL): the repository names no URL of its own.
ARG SOURCE=

# --- build: compiler and -dev packages, never shipped ----------------------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config \
      libmicrohttpd-dev libltdl-dev libyaml-dev libjson-c-dev \
      libpq-dev libhiredis-dev libcurl4-openssl-dev libc-ares-dev libssl-dev \
      libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# LIBDIR=lib: plugins in /usr/lib/healthd/plugins (not Debian's multiarch dir),
# which is also the daemon's built-in default plugin dir.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DHEALTHD_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR=lib \
 && cmake --build /build -j"$(nproc)" \
 && DESTDIR=/out cmake --install /build --strip \
 && test -x /out/usr/bin/healthd \
 && ls /out/usr/lib/healthd/plugins/*.so

# --- sdk: what building a plugin for the runtime image takes ---------------
#   podman build --target sdk -t healthd-sdk:0.1.0 .
#   podman run --rm -v "$PWD:/src" healthd-sdk:0.1.0 sh -c \
#     'cc -shared -fPIC $(pkg-config --cflags healthd) my.c -o my.so && healthd-plugin-run ./my.so'
# The runtime's Debian release and the header healthd was built with, so a
# plugin built here loads there; healthd-plugin-run runs its check once.
FROM ${DEBIAN_IMAGE} AS sdk
ARG VERSION
ARG SOURCE
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make pkg-config \
      libmicrohttpd12 libltdl7 libyaml-0-2 libjson-c5 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/bin/healthd /out/usr/bin/healthd-plugin-run /usr/bin/
COPY --from=build /out/usr/include/healthd/ /usr/include/healthd/
COPY --from=build /out/usr/lib/pkgconfig/healthd.pc /usr/lib/pkgconfig/healthd.pc
RUN pkg-config --cflags healthd \
 && ! ldd /usr/bin/healthd /usr/bin/healthd-plugin-run | grep 'not found'
# The repository states no licence: NOASSERTION (SPDX), not a guess.
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.title="healthd-sdk" \
      org.opencontainers.image.description="healthd SDK: Debian 12, a C compiler, <healthd/plugin.h> and healthd-plugin-run, to build check plugins for the healthd images"
WORKDIR /src

# --- debian-runtime: healthd on Debian with its runtime packages ----------
# Not shipped itself: the tools image is this plus Monitoring Plugins, and
# the default image is cut out of it (rootfs, below).
FROM ${DEBIAN_IMAGE} AS debian-runtime
ARG VERSION
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libltdl7 libyaml-0-2 libjson-c5 \
      libpq5 libhiredis0.14 libcurl4 libc-ares2 libssl3 libmariadb3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/*
COPY --from=build /out/usr/bin/healthd /usr/bin/healthd
COPY --from=build /out/usr/lib/healthd/plugins/ /usr/lib/healthd/plugins/
COPY docker/healthd.yaml /etc/healthd/healthd.yaml
# /opt/healthd/plugins: where custom plugins are mounted (k8s/examples).
# Everything root-owned and not writable by others: healthd refuses plugins
# that are.  The build fails here if a library is missing, the config is
# bad or VERSION is not the project's.
RUN install -d -m 0755 /opt/healthd/plugins \
 && chmod 0755 /usr/lib/healthd/plugins && chmod 0644 /etc/healthd/healthd.yaml \
 && groupadd -g 1000 healthd \
 && useradd -u 1000 -g 1000 -M -d /nonexistent -s /usr/sbin/nologin healthd \
 && ! ldd /usr/bin/healthd /usr/lib/healthd/plugins/*.so | grep 'not found' \
 && /usr/bin/healthd -c /etc/healthd/healthd.yaml --check-config \
 && /usr/bin/healthd --version | grep -F "healthd ${VERSION} "

# --- tools: the default image's contents on Debian, with a shell ------------
#   podman build --target tools -t healthd:0.1.0-tools .
# For exec checks that need /bin/sh (scripts: k8s/examples/exec-script.yaml)
# or Debian's Monitoring Plugins (/usr/lib/nagios/plugins/check_tcp,
# check_http, ...).  The apt-get run needs Debian's mirror, as the build does.
FROM debian-runtime AS tools
ARG VERSION
ARG SOURCE
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      monitoring-plugins-basic \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* \
 && test -x /usr/lib/nagios/plugins/check_tcp
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.title="healthd-tools" \
      org.opencontainers.image.description="healthd on Debian 12 with /bin/sh and Monitoring Plugins (check_tcp, check_http, ...) for exec checks"
ENV HEALTHD_CONFIG=/etc/healthd/healthd.yaml
USER 1000:1000
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/healthd"]
CMD ["-c", "/etc/healthd/healthd.yaml"]

# --- rootfs: the default image's files, checked ----------------------------
# docker/rootfs.sh copies healthd, its plugins, the ldd closure of them all,
# the libraries and files they open at run time (it says which, and why not
# the others), and runs each ELF file's library check and healthd itself
# inside the result with chroot.
FROM debian-runtime AS rootfs
COPY docker/rootfs.sh /usr/local/lib/healthd-rootfs.sh
RUN sh /usr/local/lib/healthd-rootfs.sh /rootfs

# --- default: FROM scratch, no shell, no package manager -------------------
FROM scratch
ARG VERSION
ARG SOURCE
COPY --from=rootfs /rootfs/ /
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.title="healthd" \
      org.opencontainers.image.description="healthd: answers Kubernetes probes for a service and its dependencies; no shell, no package manager"
ENV HEALTHD_CONFIG=/etc/healthd/healthd.yaml
USER 1000:1000
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/healthd"]
CMD ["-c", "/etc/healthd/healthd.yaml"]
