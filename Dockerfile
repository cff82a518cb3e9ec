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
# Fewer glibc malloc arenas: polars' threads otherwise add ~130 MB of peak memory.
# A fixed mmap threshold: large buffers (batches, frames) go back to the
# system when freed instead of staying in the heap (docs/performance.md).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
USER 10001
ENTRYPOINT ["outreach"]
CMD ["run"]
