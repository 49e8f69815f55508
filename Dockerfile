# syntax=docker/dockerfile:1
# The Switchboard image: switchboard-router and switchboard-controller on Debian bookworm.
#
#   docker build -t switchboard:0.1.0 .
#   docker run --rm switchboard:0.1.0 check --routes /dev/stdin < examples/routes.yaml
#
# The entrypoint is switchboard-router; the controller's Deployment sets
# `command: [/usr/local/bin/switchboard-controller]`.
#
# Base images are pinned by digest; the dated tag in front is for readers. Both are the
# multi-platform index digests of Docker Hub's debian:bookworm-20260918 and
# debian:bookworm-20260918-slim, as recorded in github.com/docker-library/repo-info
# (repos/debian/remote/bookworm-20260918.md and bookworm-20260918-slim.md). To move to a
# newer snapshot, take both digests of one date from there (or from
# `docker buildx imagetools inspect debian:bookworm-YYYYMMDD`); tests/docker/ checks
# that both stages stay pinned and on the same date.

FROM debian:bookworm-20260918@sha256:f37a335e82bca302e955fa39f9dfe28f1be618f016f8a2b56318e5a5111afc26 AS build
WORKDIR /src
# The packages, in a layer of their own: the same script `make` and CI run.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# The same configure and build as CI: `make build`, with warnings as errors.
RUN make build BUILD=build CI=true
# The runtime files, listed by one script (tests/docker/ runs it on local builds too).
RUN bash scripts/runtime-rootfs.sh stage --bin-dir build/bin --out /rootfs

FROM debian:bookworm-20260918-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251 AS runtime
# The project has not chosen a license or a public address yet: both are build
# arguments, NOASSERTION (SPDX: not stated) until they exist.
ARG VERSION=0.1.0
ARG SOURCE_URL=NOASSERTION
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="Kubernetes-native event router for NATS: switchboard-router and switchboard-controller" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="${LICENSES}"
# Binaries, the shared libraries they load, the time-zone database, the CA bundle.
COPY --from=build /rootfs/ /
# NATS over TLS without --nats-tls-ca trusts OpenSSL's default store; slim has no
# /usr/lib/ssl, so point OpenSSL at the bundle copied above.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
# /metrics, /healthz and /readyz: the router's --metrics-addr (0.0.0.0:9090) and the
# controller's (0.0.0.0:8080).
EXPOSE 9090 8080
ENTRYPOINT ["/usr/local/bin/switchboard-router"]
CMD ["run"]
