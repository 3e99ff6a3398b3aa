# syntax=docker/dockerfile:1
# Two images from one build, each a static binary on distroless, non-root. From the repository root:
#   docker build -t ghcr.io/cloudstack-kubevirt/reconciler:dev .                     # the reconciler (default)
#   docker build --target console -t ghcr.io/cloudstack-kubevirt/console:dev .       # the console gateway
# (The extension itself is not an image: it runs on the CloudStack management servers.)

# Build on the builder's own platform and cross-compile, so multi-arch builds need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
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

# noVNC (the npm package @novnc/novnc, pinned) for the console gateway's direct mode: plain ES modules, served as
# files, so no build step. npm checks the package's integrity against the registry.
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS novnc
ARG NOVNC_VERSION=1.7.0
WORKDIR /novnc
RUN npm pack --silent "@novnc/novnc@${NOVNC_VERSION}" \
    && tar -xzf novnc-novnc-*.tgz --strip-components=1 \
    && rm novnc-novnc-*.tgz

FROM gcr.io/distroless/static:nonroot AS console
COPY --from=build /out/console /console
COPY --from=novnc /novnc/core /novnc/core
COPY --from=novnc /novnc/vendor /novnc/vendor
COPY --from=novnc /novnc/LICENSE.txt /novnc/LICENSE.txt
# --novnc-dir's default.
ENV NOVNC_DIR=/novnc
USER 65532:65532
ENTRYPOINT ["/console"]

# The default target (last): the reconciler.
FROM gcr.io/distroless/static:nonroot AS reconciler
COPY --from=build /out/reconciler /reconciler
# Numeric, so runAsNonRoot can be verified without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/reconciler"]
