module github.com/meshward/membership

go 1.25.0

require (
	github.com/armon/go-metrics v0.4.1
	github.com/hashicorp/go-msgpack/v2 v2.1.5
	github.com/hashicorp/go-sockaddr v1.0.7
	golang.org/x/crypto v0.55.0
)

require (
	github.com/hashicorp/errwrap v1.1.0 // indirect
	github.com/hashicorp/go-immutable-radix v1.0.0 // indirect
	github.com/hashicorp/golang-lru v0.5.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
