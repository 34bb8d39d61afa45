#!/usr/bin/env bash
# generate.sh [OUT_DIR]: regenerates the Go code of the .proto files under
# api/proto into OUT_DIR (default: api/proto itself, next to the .proto
# files), with pinned plugin versions. Idempotent: it first deletes the
# generated files it owns in OUT_DIR, so a removed .proto leaves nothing
# behind. generate_test.go runs it into a temporary directory and compares.
#
# Needs Go and Debian's protoc with the well-known types (google/protobuf/
# *.proto in /usr/include): apt-get install -y protobuf-compiler
# libprotobuf-dev. The plugins are installed with `go install` into a
# temporary GOBIN.
set -euo pipefail

# The versions are part of the generated files' headers: changing one
# changes every file, so they are pinned here. protoc-gen-go matches
# google.golang.org/protobuf in go.mod; protoc-gen-go-grpc v1.6.x generates
# code for grpc >= 1.64 (go.mod has 1.84).
PROTOC_VERSION=3.21.12
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

# OUT_DIR is relative to the caller's directory; resolve it before moving.
if [ $# -gt 0 ]; then
	mkdir -p "$1"
	out=$(cd "$1" && pwd)
fi
cd "$(dirname "$0")"
src=$PWD
out=${out:-$src}

if ! command -v protoc >/dev/null; then
	echo "generate.sh: protoc not found; install it with: apt-get install -y protobuf-compiler" >&2
	exit 1
fi
have=$(protoc --version)
if [ "$have" != "libprotoc $PROTOC_VERSION" ]; then
	echo "generate.sh: protoc is \"$have\", want \"libprotoc $PROTOC_VERSION\" (Debian bookworm's protobuf-compiler); the version is written into every generated file" >&2
	exit 1
fi

wkt=/usr/include/google/protobuf/timestamp.proto
if [ ! -f "$wkt" ]; then
	echo "generate.sh: $wkt not found; install the well-known types with: apt-get install -y libprotobuf-dev" >&2
	exit 1
fi

gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOBIN=$gobin go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN=$gobin go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

find "$out/cairn" -name '*.pb.go' -type f -delete 2>/dev/null || true

mapfile -t protos < <(find cairn -name '*.proto' | LC_ALL=C sort)
PATH="$gobin:$PATH" protoc \
	-I "$src" -I /usr/include \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	"${protos[@]}"
