# healthd container image.
#
#   podman build -t healthd:0.1.0 .        (or: docker build -t healthd:0.1.0 .)
#   podman run --rm -p 8000:8000 healthd:0.1.0
#
# Runs as 1000:1000 with a read-only root filesystem (only /tmp needs to be
# writable, and healthd itself writes nothing); healthd is PID 1 and handles
# SIGTERM itself: /ready turns 503, then it exits 0 after shutdown.drain.
# tests/deploy/image_test.sh builds and runs it the way k8s/deployment.yaml does.

ARG DEBIAN_IMAGE=debian:bookworm-slim

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
WORKDIR /src

# --- runtime: shared libraries only ----------------------------------------
FROM ${DEBIAN_IMAGE}
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
# that are.  The build fails here if a library is missing or the config is bad.
RUN install -d -m 0755 /opt/healthd/plugins \
 && chmod 0755 /usr/lib/healthd/plugins && chmod 0644 /etc/healthd/healthd.yaml \
 && ! ldd /usr/bin/healthd /usr/lib/healthd/plugins/*.so | grep 'not found' \
 && /usr/bin/healthd -c /etc/healthd/healthd.yaml --check-config \
 && /usr/bin/healthd --version
ENV HEALTHD_CONFIG=/etc/healthd/healthd.yaml
USER 1000:1000
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/healthd"]
CMD ["-c", "/etc/healthd/healthd.yaml"]
