module github.com/meshward/membership

go 1.25

require github.com/hashicorp/go-msgpack/v2 v2.1.5
