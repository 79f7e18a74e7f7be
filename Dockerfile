# syntax=docker/dockerfile:1
# realtime-relay: multi-stage build of the relay and the emulator.
#   docker build -t realtime-relay .
# The runtime image has both binaries; the default command runs the relay.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p realtime-relay -p realtime-emulator \
 && cp target/release/realtime-relay target/release/realtime-emulator /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 relay
COPY --from=build /usr/local/bin/realtime-relay /usr/local/bin/realtime-emulator /usr/local/bin/
COPY docs/policy.example.toml /etc/realtime-relay/policy.example.toml
USER relay
EXPOSE 8080
ENV RELAY_LISTEN=0.0.0.0:8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["realtime-relay"]
CMD ["serve"]
