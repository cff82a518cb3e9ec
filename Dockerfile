# One image for every pipeline service of docker-compose.yml (outreach,
# grafana-grant). Base images are pinned to exact tags (scripts/lint-ops).

# Build: the release binary, librdkafka compiled in statically by rdkafka.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit's cache mounts (its built-in Dockerfile frontend has them: no
# `# syntax=` line, which would pull a frontend image by a floating tag) keep the downloaded crates and the compiled
# dependencies from one build to the next, so a source change recompiles
# only this workspace. The target directory is a cache, not a layer: the
# binary is copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin outreach \
 && cp target/release/outreach /usr/local/bin/outreach

# Run: a small Debian with just the binary, as a non-root user. The tag is
# one dated build of bookworm, the release the Rust image above is built on.
FROM debian:bookworm-20261005-slim
# ca-certificates is left unpinned on purpose: it must follow Debian's security
# updates, and a pinned version vanishes from the archive once superseded.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home outreach
COPY --from=build /usr/local/bin/outreach /usr/local/bin/outreach
USER 10001
ENTRYPOINT ["outreach"]
CMD ["run"]
