package job

import "testing"

func TestQuoteArgv(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"make", "gen"}, "make gen"},
		{[]string{"bash", "-c", "echo a; echo b"}, "bash -c 'echo a; echo b'"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"./x", "--out=a/b.txt", "k=v@1,2"}, "./x --out=a/b.txt k=v@1,2"},
		{[]string{"echo", "a\nb"}, "echo 'a\nb'"},
	} {
		if got := quoteArgv(tc.argv); got != tc.want {
			t.Errorf("quoteArgv(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}
