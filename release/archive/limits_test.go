package archive

import (
	"bytes"
	"strings"
	"testing"
)

// TestValidImpliesUnpacks: an archive accepted at publish unpacks at
// deploy. Names and link targets the kernel refuses (a component past
// NAME_MAX, a link target of PATH_MAX or more) must be refused by the
// validator, naming the entry, not found out by the deploy.
func TestValidImpliesUnpacks(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 256)
	deep := strings.Repeat(strings.Repeat("d", 99)+"/", 42) + "f" // 4201 bytes
	far := strings.Repeat("./", 2048) + "app"                     // 4099 bytes, inside
	tests := []struct {
		name    string
		build   func(testing.TB, ...ent) []byte
		entries []ent
		rule    string // "" when it must unpack
	}{
		{"tar.gz 255-byte name", tarGz, []ent{file(long[:255], "x")}, ""},
		{"tar.gz 256-byte name", tarGz, []ent{file(long, "x")}, "longer than 255 bytes"},
		{"zip 256-byte folder", zipOf, []ent{file(long+"/app", "x")}, "longer than 255 bytes"},
		{"tar.gz 256-byte link name", tarGz, []ent{file("app", "x"), link(long, "app")}, "longer than 255 bytes"},
		{"tar.gz 4201-byte path", tarGz, []ent{file(deep, "x")}, ""}, // os.Root walks it component by component
		{"zip 4099-byte link target", zipOf, []ent{file("app", "x"), link("l", far)}, "target longer than 4095 bytes"},
		{"tar.gz 4099-byte link target", tarGz, []ent{file("app", "x"), link("l", far)}, "target longer than 4095 bytes"},
		{"zip 4096-byte link target", zipOf, []ent{file("app", "x"), link("l", strings.Repeat("./", 2046)+"/app")}, "target longer than 4095 bytes"},
		{"tar.gz 4095-byte link target", tarGz, []ent{file("app", "x"), link("l", far[4:])}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := tc.build(t, tc.entries...)
			_, verr := Validate(bytes.NewReader(data), int64(len(data)), Limits{})
			_, dir := releaseDir(t)
			_, uerr := Unpack(bytes.NewReader(data), int64(len(data)), dir, Options{})
			if tc.rule == "" {
				if verr != nil || uerr != nil {
					t.Fatalf("Validate: %v; Unpack: %v; want both to accept it", verr, uerr)
				}
				return
			}
			if verr == nil || !strings.Contains(verr.Error(), tc.rule) {
				t.Errorf("Validate: %v, want %q (Unpack says %v)", verr, tc.rule, uerr)
			}
		})
	}
}
