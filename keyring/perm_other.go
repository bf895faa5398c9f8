//go:build !unix

package keyring

// permissionsMatter is false where mode bits do not describe who may read a
// file (Windows ACLs, for example): Load skips its permission check there.
const permissionsMatter = false
