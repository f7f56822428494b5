# batchproof in a container: the binary plus the shipped scenarios and mock profiles, run
# as a non-root user. deploy/*.yaml run this image on Kubernetes.
#
#   docker build -t batchproof:0.1.0 .
#   docker run --rm batchproof:0.1.0                       # the smoke scenario on the embedded mock
#   docker run --rm -e EXTEND_API_KEY batchproof:0.1.0 plan scenarios/capacity.yaml
#
# Build stage: the release binary, from the pinned Cargo.lock.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY examples examples
COPY scenarios scenarios
COPY mock mock
RUN cargo build --release --locked --bin batchproof \
 && strip target/release/batchproof

# Run stage: a slim Debian with CA certificates (for https targets), no toolchain.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /work batchproof
COPY --from=build /src/target/release/batchproof /usr/local/bin/batchproof
COPY --chown=10001:10001 scenarios /work/scenarios
COPY --chown=10001:10001 mock /work/mock
WORKDIR /work
USER 10001
ENTRYPOINT ["batchproof"]
CMD ["run"]
