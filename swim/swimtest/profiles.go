package swimtest

import "github.com/meshward/membership/swim"

// ProfileConfig returns the protocol configuration of one of the node
// runtime's profiles by its name, "lan", "wan" or "local"
// (membership.ProfileLAN, ProfileWAN and ProfileLocal, whose String
// methods give these names): swim.LANConfig, WANConfig or LocalConfig. It
// reports whether the name is known.
func ProfileConfig(name string) (swim.Config, bool) {
	switch name {
	case "lan":
		return swim.LANConfig(), true
	case "wan":
		return swim.WANConfig(), true
	case "local":
		return swim.LocalConfig(), true
	}
	return swim.Config{}, false
}
