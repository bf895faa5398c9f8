#!/usr/bin/env bash
# Run a membership cluster in Docker: one container per member, from an
# image FROM scratch around the static agent (examples/agent), on a
# user-defined bridge network, sharing one key kept in a named volume.
#
#	deploy/docker/cluster.sh build     # the static agent and the image (offline)
#	deploy/docker/cluster.sh up [N]    # a network, a key, N members (default 5)
#	deploy/docker/cluster.sh down      # remove the members, the network and the key
#
# Environment: PREFIX names everything (default "membership": containers
# membership-1 to membership-N, network membership-net, volume
# membership-keys); IMAGE is the image (default membership-agent:dev);
# PROFILE is the agent's -profile (default lan).
#
# Every member joins through membership-1 and membership-2, by the names
# Docker's DNS gives containers on the network, so any member, the first
# two included, can be restarted and comes back by itself. (membership-1
# starts before there is anyone to join and prints a join error: expected.)
# Watch a member with "docker logs -f membership-3": one JSON line per
# membership event (examples/agent documents them).
set -euo pipefail

PREFIX=${PREFIX:-membership}
IMAGE=${IMAGE:-membership-agent:dev}
PROFILE=${PROFILE:-lan}
LABEL=io.meshward.membership.cluster=$PREFIX
here=$(cd "$(dirname "$0")" && pwd)

build() {
	ctx=$(mktemp -d)
	trap 'rm -rf "$ctx"' EXIT
	mkdir "$ctx/keys"
	cp "$here/Dockerfile" "$ctx/"
	(cd "$here/../.." && CGO_ENABLED=0 go build -ldflags='-s -w' -o "$ctx/agent" ./examples/agent)
	docker build -q -t "$IMAGE" "$ctx" > /dev/null
	echo "built $IMAGE"
}

up() {
	local n=${1:-5} i
	if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
		echo "up: want a number of members, got '$n'" >&2
		exit 2
	fi
	docker image inspect "$IMAGE" > /dev/null 2>&1 || build
	docker network inspect "$PREFIX-net" > /dev/null 2>&1 ||
		docker network create --label "$LABEL" "$PREFIX-net" > /dev/null
	if ! docker volume inspect "$PREFIX-keys" > /dev/null 2>&1; then
		docker volume create --label "$LABEL" "$PREFIX-keys" > /dev/null
		docker run --rm -v "$PREFIX-keys:/keys" "$IMAGE" -keygen -keyfile /keys/cluster.key
	fi
	for i in $(seq 1 "$n"); do
		docker run -d --name "$PREFIX-$i" --hostname "$PREFIX-$i" --label "$LABEL" \
			--network "$PREFIX-net" -v "$PREFIX-keys:/keys:ro" "$IMAGE" \
			-name "$PREFIX-$i" -bind 0.0.0.0:7946 -keyfile /keys/cluster.key \
			-label "$PREFIX" -profile "$PROFILE" -payload "n=$i" \
			-join "$PREFIX-1:7946,$PREFIX-2:7946" > /dev/null
		echo "started $PREFIX-$i"
	done
}

down() {
	local ids
	ids=$(docker ps -aq --filter "label=$LABEL")
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086 # one id per word
		docker rm -f $ids > /dev/null
	fi
	docker network rm "$PREFIX-net" > /dev/null 2>&1 || true
	docker volume rm "$PREFIX-keys" > /dev/null 2>&1 || true
	echo "removed $PREFIX"
}

case "${1:-}" in
build) build ;;
up) up "${2:-5}" ;;
down) down ;;
*)
	echo "usage: $0 build | up [N] | down" >&2
	exit 2
	;;
esac
