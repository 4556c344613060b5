package config_test

import (
	"testing"
	"time"

	"github.com/oops-deploy/oops/config"
)

// TestAnalysisParsedAtLoad: the keys of smoke, warm-up and the bake are
// checked when .oopsrc loads, each problem at its line:column.
func TestAnalysisParsedAtLoad(t *testing.T) {
	tests := []parseCase{
		{"all ok", `"smoke": ["./smoke.sh"], "warm-up-paths": ["/", "/a?b=c"], "warm-up-requests": 5, "bake": "5m", "analysis-interval": "10s", "failure-limit": 2, "max-error-rate": "2%", "max-latency-p99": "800ms", "min-requests": 0}`, ""},
		{"bake off needs nothing", `"bake": "0s"}`, ""},
		{"smoke empty", `"smoke": []}`, `/p/.oopsrc:2:1: smoke names no program`},
		{"smoke a string", `"smoke": "./smoke.sh"}`, `"smoke" must be an array of strings, not a string`},
		{"warm-up path", "\"warm-up-paths\": [\"/\",\n \"health\"]}", `/p/.oopsrc:3:2: warm-up-paths: "health" is not a path`},
		{"warm-up-requests alone", `"warm-up-requests": 3}`, `warm-up-requests is set but warm-up-paths is not`},
		{"warm-up-requests zero", `"warm-up-paths": ["/"], "warm-up-requests": 0}`, `warm-up-requests 0 must be 1 to 10000`},
		{"bake bad", `"bake": "soon"}`, `/p/.oopsrc:2:1: bake "soon" is not a duration`},
		{"bake with nothing to measure", `"bake": "1m"}`, `bake "1m" has nothing to measure`},
		{"interval too short", `"analysis-interval": "10ms"}`, `analysis-interval "10ms" is shorter than 100ms`},
		{"interval zero", `"analysis-interval": "0s"}`, `analysis-interval "0s" is not a positive duration`},
		{"error rate no percent", `"max-error-rate": "0.02"}`, `max-error-rate "0.02" is not a percentage: write it like "2%"`},
		{"error rate over 100", `"max-error-rate": "150%"}`, `max-error-rate "150%" is not a percentage`},
		{"error rate NaN", `"max-error-rate": "NaN%"}`, `is not a percentage`},
		{"p99 bad", `"max-latency-p99": "fast"}`, `max-latency-p99 "fast" is not a positive duration`},
		{"failure-limit zero", `"failure-limit": 0}`, `failure-limit 0 must be 1 or more`},
		{"alarms ok", `"bake": "1m", "alarms": ["api-5xx", "api p99"], "alarms-ignore-errors": true}`, ""},
		{"alarm blank", "\"alarms\": [\"a\",\n \" \"]}", `/p/.oopsrc:3:2: alarms: " " is not a CloudWatch alarm name`},
		{"alarms a string", `"alarms": "api-5xx"}`, `"alarms" must be an array of strings, not a string`},
		{"factor ok", `"bake": "1m", "max-error-factor": 2.5}`, ""},
		{"factor under 1", `"max-error-factor": 0.5}`, `max-error-factor 0.5 must be 1 to 1000`},
		{"factor a string", `"max-error-factor": "2x"}`, `"max-error-factor" must be a number, not a string`},
		{"min-requests negative", `"min-requests": -1}`, `min-requests -1 must be 0 or more`},
	}
	checkParseCases(t, tests)
}

func TestAnalysisValues(t *testing.T) {
	c, err := config.Parse("/p/.oopsrc", []byte(`{"application-name": "a", "store": "s",
		"smoke": ["curl", "-fsS", "$OOPS_URL/"], "smoke-timeout": "30s", "warm-up-paths": ["/"], "warm-up-requests": 20,
		"bake": "2m", "analysis-interval": "5s", "failure-limit": 3, "max-error-rate": "0.5%", "max-latency-p99": "800ms", "min-requests": 10}`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Values.Analysis
	if a.Bake == nil || *a.Bake != 2*time.Minute || a.AnalysisInterval != 5*time.Second || a.FailureLimit != 3 ||
		a.MaxErrorRate == nil || *a.MaxErrorRate != 0.005 || a.MaxLatencyP99 != 800*time.Millisecond ||
		a.MinRequests == nil || *a.MinRequests != 10 || a.WarmUpRequests != 20 || len(a.WarmUpPaths) != 1 ||
		len(a.Smoke) != 3 || a.SmokeTimeout != 30*time.Second {
		t.Fatalf("values: %+v", a)
	}
}
