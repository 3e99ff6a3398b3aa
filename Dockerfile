# syntax=docker/dockerfile:1
# Two images from one build, each a static binary on distroless, non-root. From the repository root:
#   docker build -t ghcr.io/cloudstack-kubevirt/reconciler:dev .                     # the reconciler (default)
#   docker build --target console -t ghcr.io/cloudstack-kubevirt/console:dev .       # the console gateway
# (The extension itself is not an image: it runs on the CloudStack management servers.)

# Base images are pinned by the digest of their multi-platform index, so a rebuild gets the same bases whatever the
# tags point at since; the tag only says what the digest was. To update one, take the index digest of the new tag
# (`docker buildx imagetools inspect golang:1.26`) and build once. Where the digests below come from:
#   golang:1.26 (Go 1.26.5)           docker-library/repo-info, repos/golang/remote/1.26.md, 5 Aug 2026 (f8f57f75)
#   node:22-bookworm-slim (22.23.2)   docker-library/repo-info, repos/node/remote/22-bookworm-slim.md, 19 Sep 2026
#                                     (3179cb4d)
#   gcr.io/distroless/static:nonroot  gcr.io has no repo-info: the digest two unrelated projects pin beside golang
#                                     1.26.8 and 1.27; check it with `crane digest gcr.io/distroless/static:nonroot`
# CI builds no image (it has no Docker), so nothing in CI checks that these digests still resolve.

# Build on the builder's own platform and cross-compile, so multi-arch builds need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26@sha256:6cd10a6fcc5eadd62008fc2ad8056b38971cafd42f44d55297f18be8adc86410 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/reconciler ./cmd/console

# noVNC (the npm package @novnc/novnc) for the console gateway's direct mode: plain ES modules, served as files, so
# no build step. hack/novnc.lock pins its version and the sha512 of its tarball; hack/fetch-novnc.sh refuses any
# other tarball, whatever the registry says.
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim@sha256:48e4b67d85f87bd551df43704e24d252f56cc5f8e9718841aace50f19948f0f9 AS novnc
WORKDIR /src
COPY hack/novnc.lock hack/fetch-novnc.sh hack/
RUN hack/fetch-novnc.sh /novnc

FROM gcr.io/distroless/static:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3 AS console
COPY --from=build /out/console /console
COPY --from=novnc /novnc/core /novnc/core
COPY --from=novnc /novnc/vendor /novnc/vendor
COPY --from=novnc /novnc/LICENSE.txt /novnc/LICENSE.txt
# --novnc-dir's default.
ENV NOVNC_DIR=/novnc
USER 65532:65532
ENTRYPOINT ["/console"]

# The default target (last): the reconciler.
FROM gcr.io/distroless/static:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3 AS reconciler
COPY --from=build /out/reconciler /reconciler
# Numeric, so runAsNonRoot can be verified without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/reconciler"]
