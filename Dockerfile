# syntax=docker/dockerfile:1
#
# One image per binary, all from one build stage:
#
#   docker build --target edge        -t charla/edge .
#   docker build --target chatsvc     -t charla/chatsvc .
#   docker build --target profilesvc  -t charla/profilesvc .
#   docker build --target notifysvc   -t charla/notifysvc .
#   docker build --target presencesvc -t charla/presencesvc .
#   docker build --target charla      -t charla/charla .      # everything in one process
#   docker build --target charlactl   -t charla/charlactl .   # the admin CLI
#
# Release builds stamp the version (see shared/buildinfo; `-version` prints it):
#
#   docker build --build-arg VERSION=v1.0.0 --build-arg REVISION=$(git rev-parse HEAD) ...
#
# Binaries are static (CGO_ENABLED=0: SQLite is modernc.org/sqlite, pure Go) and run as
# the distroless "nonroot" user (65532) with nothing else in the image.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Modules first, so that source changes reuse the download layer.
COPY go.work go.work.sum ./
COPY proto/go.mod proto/go.sum proto/
COPY shared/go.mod shared/go.sum shared/
COPY chatsvc/go.mod chatsvc/go.sum chatsvc/
COPY profilesvc/go.mod profilesvc/go.sum profilesvc/
COPY notifysvc/go.mod notifysvc/go.sum notifysvc/
COPY presencesvc/go.mod presencesvc/go.sum presencesvc/
COPY edge/go.mod edge/go.sum edge/
COPY cmd/go.mod cmd/go.sum cmd/
# deploy/ is a module of tests (kustomize, Prometheus): not needed for the binaries.
RUN go work edit -dropuse=./deploy
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN go work edit -dropuse=./deploy
ARG VERSION=""
ARG REVISION=""
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    pkg=github.com/charla/charla/shared/buildinfo; \
    ldflags="-s -w -X ${pkg}.version=${VERSION} -X ${pkg}.revision=${REVISION}"; \
    mkdir -p /out /out/data; \
    for main in edge/cmd/edge chatsvc/cmd/chatsvc profilesvc/cmd/profilesvc \
                notifysvc/cmd/notifysvc presencesvc/cmd/presencesvc \
                cmd/charla cmd/charlactl; do \
      go build -ldflags "$ldflags" -o /out/ "./${main}"; \
    done; \
    /out/edge -version

# The runtime base: CA certificates, tzdata, /etc/passwd with nonroot; no shell.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
USER 65532:65532
ENV LOG_FORMAT=json

FROM runtime AS edge
COPY --from=build /out/edge /usr/local/bin/edge
ENV EDGE_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/edge"]

FROM runtime AS chatsvc
COPY --from=build /out/chatsvc /usr/local/bin/chatsvc
ENV RPC_ADDR=0.0.0.0:8090
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/chatsvc"]

FROM runtime AS profilesvc
COPY --from=build /out/profilesvc /usr/local/bin/profilesvc
ENV RPC_ADDR=0.0.0.0:8090
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/profilesvc"]

FROM runtime AS notifysvc
COPY --from=build /out/notifysvc /usr/local/bin/notifysvc
ENV RPC_ADDR=0.0.0.0:8090
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/notifysvc"]

FROM runtime AS presencesvc
COPY --from=build /out/presencesvc /usr/local/bin/presencesvc
ENV RPC_ADDR=0.0.0.0:8090
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/presencesvc"]

# Everything in one process, on SQLite in /data unless DATABASE_URL says otherwise.
FROM runtime AS charla
COPY --from=build /out/charla /usr/local/bin/charla
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
ENV EDGE_ADDR=0.0.0.0:8080 RPC_ADDR=127.0.0.1:8090 DATABASE_URL=sqlite:///data/charla.db
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/charla"]

FROM runtime AS charlactl
COPY --from=build /out/charlactl /usr/local/bin/charlactl
ENTRYPOINT ["/usr/local/bin/charlactl"]
