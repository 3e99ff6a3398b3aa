# syntax=docker/dockerfile:1
# The reconciler image: a static binary on distroless, non-root. Build from the repository root:
#   docker build -t ghcr.io/cloudstack-kubevirt/reconciler:dev .
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
    go build -trimpath -ldflags "-s -w" -o /out/reconciler ./cmd/reconciler

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/reconciler /reconciler
# Numeric, so runAsNonRoot can be verified without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/reconciler"]
