module github.com/meshward/membership

go 1.25

require (
	github.com/armon/go-metrics v0.4.1
	github.com/hashicorp/go-sockaddr v1.0.7
)

require (
	github.com/hashicorp/errwrap v1.1.0 // indirect
	github.com/hashicorp/go-immutable-radix v1.0.0 // indirect
	github.com/hashicorp/golang-lru v0.5.0 // indirect
)
