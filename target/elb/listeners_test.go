package elb

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
)

func TestRecordRoundTrip(t *testing.T) {
	longCert := "arn:aws:iam::123456789012:server-certificate/" + strings.Repeat("very-long-path/", 12) + "cert_name.v2+x=y@z"
	tests := []struct {
		name       string
		defs       []listener
		wantChunks int
	}{
		{"http only", []listener{{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP"}}, 1},
		{"80 and 443 with cert and policies", []listener{
			{Port: 443, Protocol: "HTTPS", InstanceProtocol: "HTTP", Cert: "arn:aws:acm:us-east-1:123456789012:certificate/0c1b-4f", Policies: []string{"AWSConsole-SSLNegotiationPolicy-web-1", "ELBSecurityPolicy-2016-08"}},
			{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP"},
		}, 1},
		{"longer than one tag value", []listener{
			{Port: 443, Protocol: "HTTPS", InstanceProtocol: "HTTPS", Cert: longCert, Policies: []string{"p1"}},
			{Port: 8443, Protocol: "SSL", InstanceProtocol: "TCP", Cert: longCert},
		}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := encodeRecord(tt.defs)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) != tt.wantChunks {
				t.Errorf("got %d tag values, want %d: %q", len(chunks), tt.wantChunks, chunks)
			}
			for _, c := range chunks {
				if len(c) > maxTagValue {
					t.Errorf("tag value of %d characters exceeds the ELB limit of %d", len(c), maxTagValue)
				}
				// The characters a Classic ELB tag value accepts.
				if strings.Trim(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.:/=+-@") != "" {
					t.Errorf("tag value %q has characters ELB tags reject", c)
				}
			}
			got, err := decodeRecord(strings.Join(chunks, " "))
			if err != nil {
				t.Fatal(err)
			}
			if !sameDefs(got, tt.defs) {
				t.Errorf("round trip changed the listeners:\n got %+v\nwant %+v", got, tt.defs)
			}
		})
	}
}

func TestDecodeRecordRejectsGarbage(t *testing.T) {
	for _, s := range []string{"X80", "L80:HTTP", "Cfoo L80:HTTP:HTTP", "Lx:HTTP:HTTP", "L0:HTTP:HTTP",
		// Found by FuzzDecodeRecord: listeners no ELB can have.
		"L80::", "L80:HTTP:", "L65536:HTTP:HTTP", "L80:FTP:HTTP", "L80:http:http",
		"L80:HTTP:HTTP L80:TCP:TCP", "L443:HTTPS:HTTP Ca Cb",
	} {
		if _, err := decodeRecord(s); err == nil {
			t.Errorf("decodeRecord(%q) accepted a malformed record", s)
		}
	}
}

func TestHealthCheckKeepsProtocolPathAndTimings(t *testing.T) {
	tests := []struct {
		target, moved string
	}{
		{"HTTP:8080/healthcheck", "HTTP:8081/healthcheck"},
		{"HTTPS:8080/", "HTTPS:8081/"},
		{"TCP:8080", "TCP:8081"},
		{"http:8080/a/b?c=d", "HTTP:8081/a/b?c=d"},
	}
	for _, tt := range tests {
		hc, err := parseHealthCheck(&types.HealthCheck{Target: aws.String(tt.target), Interval: aws.Int32(10), Timeout: aws.Int32(4), HealthyThreshold: aws.Int32(3), UnhealthyThreshold: aws.Int32(5)})
		if err != nil {
			t.Fatalf("%s: %v", tt.target, err)
		}
		got := hc.sdk(8081)
		if aws.ToString(got.Target) != tt.moved {
			t.Errorf("%s moved to %s, want %s", tt.target, aws.ToString(got.Target), tt.moved)
		}
		if aws.ToInt32(got.Interval) != 10 || aws.ToInt32(got.Timeout) != 4 || aws.ToInt32(got.HealthyThreshold) != 3 || aws.ToInt32(got.UnhealthyThreshold) != 5 {
			t.Errorf("%s: timings changed: %+v", tt.target, got)
		}
	}
	if _, err := parseHealthCheck(&types.HealthCheck{Target: aws.String("HTTP/healthcheck")}); err == nil {
		t.Error("a target without a port was accepted")
	}
}
