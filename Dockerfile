# Build the manager as a static binary, then ship it alone in a distroless non-root image.
#
# Base images are pinned by digest (the multi-arch index digest) so that a re-pushed tag
# cannot change what is built or shipped; the tag is kept for readers. These digests were
# taken from public Dockerfiles that pin the same tags (several independent projects agree
# on each); no registry was queried from this repository. To bump, resolve the new digest
# with `docker buildx imagetools inspect golang:1.26.N` (or `crane digest`) and update both
# the tag and the digest. The builder's Go must be at least go.mod's `go` line.
FROM golang:1.26.5@sha256:3aff6657219a4d9c14e27fb1d8976c49c29fddb70ba835014f477e1c70636647 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o manager ./cmd/manager

FROM gcr.io/distroless/static:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
