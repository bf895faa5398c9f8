module github.com/meshward/membership

go 1.25
