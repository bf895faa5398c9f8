//go:build unix

package keyring

// permissionsMatter is true where a file's mode bits say who may read it,
// so Load can refuse a key file that others may read.
const permissionsMatter = true
