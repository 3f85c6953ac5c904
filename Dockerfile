# The livefire image: one static binary (musl, so DNS resolution needs no libc in the
# image) on distroless/static, run as the non-root user 65532. Split runs on Kubernetes
# use it for their agents (`livefire run FILE --segments N --on kubernetes`, docs/kubernetes.md).
#
#   docker build -t livefire:0.1.0 .
#   kind load docker-image livefire:0.1.0          # or push it to your registry

# Build: Alpine's Rust targets musl natively, so the binary is static without a
# cross toolchain; musl-dev gives ring (rustls) its C headers.
FROM rust:1.89-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p livefire --features kubernetes \
 && cp target/release/livefire /livefire \
 && /livefire version

# Run: no shell, no package manager; only the binary and CA certificates.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /livefire /usr/local/bin/livefire
USER 65532:65532
ENTRYPOINT ["livefire"]
CMD ["--help"]
