package forms

import (
	"strings"
	"testing"
)

func TestIDs(t *testing.T) {
	tests := []struct {
		id      string
		lower   bool // ValidProjectID and ValidFormID
		version bool
	}{
		{"perception", true, true},
		{"a", true, true},
		{"0", true, true},
		{"kenya-2024_q3", true, true},
		{strings.Repeat("a", 64), true, false},
		{strings.Repeat("a", 65), false, false},
		{strings.Repeat("a", 32), true, true},
		{strings.Repeat("a", 33), true, false},
		{"", false, false},
		{"-a", false, false},
		{"_a", false, false},
		{"Perception", false, true},
		{"v1.2.0", false, true},
		{"1.0-rc_1", false, true},
		{".1", false, false},
		{"a b", false, false},
		{"a/b", false, false},
		{"é", false, false},
		{"a\n", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ValidProjectID(tt.id); got != tt.lower {
				t.Errorf("ValidProjectID = %v", got)
			}
			if got := ValidFormID(tt.id); got != tt.lower {
				t.Errorf("ValidFormID = %v", got)
			}
			if got := ValidVersion(tt.id); got != tt.version {
				t.Errorf("ValidVersion = %v", got)
			}
		})
	}
}
