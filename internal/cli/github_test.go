package cli

import "testing"

func TestServesHost(t *testing.T) {
	for _, tc := range []struct {
		host, api string
		want      bool
	}{
		{"github.com", "https://api.github.com", true},
		{"", "https://api.github.com", false},
		{"gist.github.com", "https://api.github.com", false},
		{"ghe.example", "https://api.github.com", false},
		{"ghe.example", "https://ghe.example/api/v3", true},
		{"github.com", "https://ghe.example/api/v3", false},
		{"ghe.example", "https://ghe.example/api/v3/", true},
		{"acme.ghe.com", "https://api.acme.ghe.com", true},
		{"github.com", "https://api.acme.ghe.com", false},
		{"api.acme.ghe.com", "https://api.acme.ghe.com", false},
		{"github.com", "http://127.0.0.1:8080", true},
		{"127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"other.example", "https://ghe.example/api/v3", false},
	} {
		if got := servesHost(tc.host, tc.api); got != tc.want {
			t.Errorf("servesHost(%q, %q) = %v, want %v", tc.host, tc.api, got, tc.want)
		}
	}
}
