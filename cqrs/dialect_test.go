package cqrs

import "testing"

func TestRebind(t *testing.T) {
	tests := []struct {
		d           Dialect
		query, want string
	}{
		{SQLite, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{Postgres, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{Postgres, "SELECT 1", "SELECT 1"},
	}
	for _, tc := range tests {
		if got := tc.d.Rebind(tc.query); got != tc.want {
			t.Errorf("%v.Rebind(%q) = %q, want %q", tc.d, tc.query, got, tc.want)
		}
	}
	if err := Dialect(0).validate(); err == nil {
		t.Error("Dialect(0).validate() = nil, want an error")
	}
	if _, err := NewProjector(nil, Dialect(7), nil, nil, ProjectorOptions{Name: "x"}); err == nil {
		t.Error("NewProjector(Dialect(7)) = nil error")
	}
	if _, err := NewProjector(nil, SQLite, nil, nil, ProjectorOptions{}); err == nil {
		t.Error("NewProjector(no name) = nil error")
	}
}
