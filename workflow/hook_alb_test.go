package workflow

import (
	"context"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// tgTarget is an ALB-like target: colors are target groups, no ports in
// its state; TargetGroup gives each one's port.
type tgTarget struct {
	*lb
	ports map[release.Color]int
}

func (t tgTarget) TargetGroup(_ context.Context, c release.Color) (string, int, error) {
	return "web-" + string(c), t.ports[c], nil
}

// CodeDeploy hooks on an ALB get the color's port from its target group
// (never port 0), and with a deployment group per color, the color from
// the group that runs them.
func TestHookEnvALBPorts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rc, group string
		want            release.Color
		port, livePort  int
	}{
		{"one group", `{"application-name": "api", "store": "rel", "alb-name": "web", "deployment-group": "dg"}`, "dg", release.Green, 8082, 8081},
		{"group per color, off", `{"application-name": "api", "store": "rel", "alb-name": "web", "blue-asg": "b", "green-asg": "g", "blue-deployment-group": "dg-blue", "green-deployment-group": "dg-green"}`, "dg-green", release.Green, 8082, 8081},
		{"group per color, live", `{"application-name": "api", "store": "rel", "alb-name": "web", "blue-asg": "b", "green-asg": "g", "blue-deployment-group": "dg-blue", "green-deployment-group": "dg-green"}`, "dg-blue", release.Blue, 8081, 8081},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newLB()
			b.live.Port, b.off.Port = 0, 0
			fx := hookFixture(t, b, Deployment{Commit: "c"})
			fx2 := newFixture(t, tc.rc)
			fx.d.Config = fx2.d.Config
			fx.env[EnvDeploymentGroup] = tc.group
			tt := tgTarget{lb: b, ports: map[release.Color]int{release.Blue: 8081, release.Green: 8082}}
			fx.d.Target = func(context.Context) (target.Target, error) {
				return struct {
					target.Target
					tgTarget
				}{b.target(), tt}, nil
			}
			env, err := fx.runner().HookEnv(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			if env.Color != tc.want || env.Port != tc.port || env.LivePort != tc.livePort {
				t.Fatalf("color %s port %d live port %d; want %s %d %d", env.Color, env.Port, env.LivePort, tc.want, tc.port, tc.livePort)
			}
			if env.HealthURL != "http://127.0.0.1:8082/up" && tc.port == 8082 {
				t.Fatalf("health URL %s", env.HealthURL)
			}
		})
	}
}
