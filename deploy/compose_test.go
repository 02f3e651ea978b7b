package deploy_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// TestCompose loads compose.yaml as `docker compose config` does (the Compose
// specification's schema, anchors and merges) and checks that every Charla service builds
// a target of the Dockerfile and gets the settings it needs.
func TestCompose(t *testing.T) {
	t.Parallel()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithName("charla"), cli.WithProfiles([]string{"tools"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	targets := dockerTargets(t)
	charla := 0
	for name, s := range p.Services {
		image, _, _ := strings.Cut(s.Image, ":")
		target, ok := strings.CutPrefix(image, "charla/")
		if !ok {
			continue
		}
		charla++
		if !slices.Contains(targets, target) {
			t.Errorf("%s: image %s is not a target of the Dockerfile %v", name, s.Image, targets)
		}
		if s.Build != nil && s.Build.Target != target {
			t.Errorf("%s: builds target %q for image %s", name, s.Build.Target, s.Image)
		}
		if target == "edge" {
			// Each WebSocket is a descriptor; a reconnection storm holds old and new at once.
			if l := s.Ulimits["nofile"]; l == nil || l.Soft < 100_000 || l.Hard < l.Soft {
				t.Errorf("%s: nofile limit %+v, want at least 100,000 open files", name, l)
			}
		}
		for _, k := range []string{"BUS_URL", "INTERNAL_API_TOKEN", "CHAT_URL", "PROFILE_URL", "NOTIFY_URL", "PRESENCE_URL"} {
			if v := s.Environment[k]; v == nil || *v == "" {
				t.Errorf("%s: %s is not set", name, k)
			}
		}
	}
	if charla < 6 {
		t.Errorf("%d Charla containers, want the four services, two edges and charlactl", charla)
	}
}
