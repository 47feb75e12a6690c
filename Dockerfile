# syntax=docker/dockerfile:1
#
# Container image of teams-voice-exporter: one static binary on distroless/static.
#
#   docker build -t teams-voice-exporter .
#   docker run --rm --read-only -p 9885:9885 teams-voice-exporter --demo
#
# The binary is linked statically against glibc (crt-static) rather than built for musl:
# the official Rust image already has everything that takes (ring's C and assembly build
# with its gcc), so the builder installs no package. glibc 2.34 and later resolve names
# from /etc/hosts and DNS without loading NSS libraries, so a static binary resolves
# Graph's and Entra ID's hosts in an image that has no shared libraries at all. TLS is
# rustls with ring; no OpenSSL is involved.

ARG RUST_VERSION=1.89.0

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what `cargo build` reads (see .dockerignore), so edits elsewhere keep the cache.
COPY . .
# crt-static needs an explicit --target, so that build scripts and proc-macros stay
# dynamic host programs; the cache mounts keep crates and objects between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    target="$(uname -m)-unknown-linux-gnu"; \
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target "${target}" --bin teams-voice-exporter; \
    install -D -m 0755 "target/${target}/release/teams-voice-exporter" /out/teams-voice-exporter; \
    /out/teams-voice-exporter --version; \
    mkdir -p /out/state

# distroless/static: CA certificates, tzdata, /etc/passwd with the nonroot user, and no
# shell or package manager. 65532 is its nonroot user, given as a number so that Kubernetes
# can check runAsNonRoot against the image.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="teams-voice-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Microsoft Teams Direct Routing call logs from Microsoft Graph" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/teams-voice-exporter /teams-voice-exporter
# An empty state directory owned by the exporter's user: a Docker volume mounted here
# takes its ownership, so --state.path=/var/lib/teams-voice-exporter/state.db works
# without a chown.
COPY --from=build --chown=65532:65532 /out/state /var/lib/teams-voice-exporter
USER 65532:65532
EXPOSE 9885
# Nothing is written at run time unless --state.path is given: the image runs with a
# read-only root filesystem, in --demo mode too.
ENTRYPOINT ["/teams-voice-exporter"]
