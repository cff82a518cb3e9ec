# Build: the release binary, librdkafka compiled in statically by rdkafka.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin outreach

# Run: a small Debian with just the binary, as a non-root user.
FROM debian:bookworm-slim
# ca-certificates is left unpinned on purpose: it must follow Debian's security
# updates, and a pinned version vanishes from the archive once superseded.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home outreach
COPY --from=build /src/target/release/outreach /usr/local/bin/outreach
USER 10001
ENTRYPOINT ["outreach"]
CMD ["run"]
