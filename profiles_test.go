package membership

import (
	"reflect"
	"testing"

	"github.com/meshward/membership/swim/swimtest"
)

// TestProfilesMatchSimulator checks that the simulator's profile names
// (swimtest.ProfileConfig, which the frontier sweep of docs/frontier.md
// and the Docker bounds use) give what Profile.protocol gives, so that the
// sweep measures the defaults users get.
func TestProfilesMatchSimulator(t *testing.T) {
	for _, p := range []Profile{ProfileLAN, ProfileWAN, ProfileLocal} {
		sim, ok := swimtest.ProfileConfig(p.String())
		if !ok {
			t.Fatalf("swimtest.ProfileConfig(%q) unknown", p)
		}
		if got := p.protocol(); !reflect.DeepEqual(got, sim) {
			t.Errorf("profile %s: Profile.protocol has\n%+v\nswimtest.ProfileConfig has\n%+v\nfix the name mapping in swim/swimtest/profiles.go", p, got, sim)
		}
	}
	if _, ok := swimtest.ProfileConfig("nope"); ok {
		t.Error(`swimtest.ProfileConfig("nope") reported known`)
	}
}
