package snapshot

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Args
	}{
		{"nothing", nil, Args{}},
		{"inputs", []string{"src", "package.json", "my file.txt", "*.c"},
			Args{Inputs: []string{"src", "package.json", "my file.txt", "*.c"}}},
		{"a dash alone is a path", []string{"-"}, Args{Inputs: []string{"-"}}},
		{"raw", []string{"--raw", "v1", "in", "--raw", "v2"},
			Args{Inputs: []string{"in"}, Raw: []string{"v1", "v2"}}},
		{"raw with =", []string{"--raw=a=b", "--raw="}, Args{Raw: []string{"a=b", ""}}},
		{"raw value that looks like an option", []string{"--raw", "--outputs", "--raw", "-n"},
			Args{Raw: []string{"--outputs", "-n"}}},
		{"raw keeps its bytes", []string{"--raw", "a \"b\"\t\\\n$x"}, Args{Raw: []string{"a \"b\"\t\\\n$x"}}},
		{"no-op flags", []string{"-n", "in", "--unskippable", "-l", "--long-running"},
			Args{Inputs: []string{"in"}}},
		{"cache flags", []string{"--fuzzy-cache", "--cache-success", "--commit-status"},
			Args{FuzzyCache: true, CacheSuccess: true, CommitStatus: true}},
		{"cache root and version", []string{"--cache-root", "/r", "--cache-version", "3"},
			Args{CacheRoot: "/r", CacheVersion: "3"}},
		{"cache root and version with =", []string{"--cache-root=/r", "--cache-version=v=2"},
			Args{CacheRoot: "/r", CacheVersion: "v=2"}},
		{"outputs", []string{"in", "--outputs", "out", "dist/"},
			Args{Inputs: []string{"in"}, Outputs: []string{"out", "dist/"}}},
		{"short outputs", []string{"in", "-o", "out"},
			Args{Inputs: []string{"in"}, Outputs: []string{"out"}}},
		{"options after outputs", []string{"-o", "out", "--raw", "r", "out2", "-n"},
			Args{Raw: []string{"r"}, Outputs: []string{"out", "out2"}}},
		{"commands", []string{"in", "--outputs", "out", "--cmd", "echo a", "-c", "echo b", "--cmd=echo c"},
			Args{Inputs: []string{"in"}, Outputs: []string{"out"}, Cmds: []string{"echo a", "echo b", "echo c"}}},
		{"outputs without a path", []string{"--outputs", "--cmd", "x"}, Args{Cmds: []string{"x"}}},
		{"double dash makes paths of inputs", []string{"--", "--raw", "-n"},
			Args{Inputs: []string{"--raw", "-n"}}},
		{"double dash makes paths of outputs", []string{"in", "-o", "--", "--cmd", "-o"},
			Args{Inputs: []string{"in"}, Outputs: []string{"--cmd", "-o"}}},
		{"empty word is a path", []string{""}, Args{Inputs: []string{""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("ParseArgs(%q) =\n%+v\nwant\n%+v", tt.args, *got, tt.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown long", []string{"in", "--bogus"}, "snapshot: Invalid option or missing argument: --bogus"},
		{"unknown short", []string{"-x"}, "snapshot: Invalid option or missing argument: -x"},
		{"unknown with =", []string{"--bogus=1"}, "snapshot: Invalid option or missing argument: --bogus=1"},
		{"unknown after outputs", []string{"-o", "out", "--nope"}, "snapshot: Invalid option or missing argument: --nope"},
		{"raw missing", []string{"--raw"}, "snapshot: Invalid option or missing argument: --raw"},
		{"cache root missing", []string{"--cache-root"}, "snapshot: Invalid option or missing argument: --cache-root"},
		{"cache version missing", []string{"in", "--cache-version"}, "snapshot: Invalid option or missing argument: --cache-version"},
		{"cmd missing", []string{"-o", "out", "--cmd"}, "snapshot: Invalid option or missing argument: --cmd"},
		{"short cmd missing", []string{"-o", "out", "-c"}, "snapshot: Invalid option or missing argument: -c"},
		{"value given to a flag", []string{"--fuzzy-cache=yes"}, "snapshot: Invalid option or missing argument: --fuzzy-cache=yes"},
		{"value given to outputs", []string{"--outputs=out"}, "snapshot: Invalid option or missing argument: --outputs=out"},
		{"cmd before outputs", []string{"in", "--cmd", "echo"}, "snapshot: --cmd is supported only after --outputs"},
		{"short cmd before outputs", []string{"-c", "echo", "-o", "out"}, "snapshot: --cmd is supported only after --outputs"},
		{"cmd with = before outputs", []string{"--cmd=echo"}, "snapshot: --cmd is supported only after --outputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if err == nil {
				t.Fatalf("ParseArgs(%q) = %+v, want error %q", tt.args, *got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseArgs(%q): error %q, want %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseArgsErrorTypes(t *testing.T) {
	_, err := ParseArgs([]string{"--bogus"})
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Option != "--bogus" {
		t.Errorf("ParseArgs(--bogus): %#v, want an *OptionError for --bogus", err)
	}
	_, err = ParseArgs([]string{"--cmd", "x"})
	if !errors.Is(err, ErrCmdBeforeOutputs) {
		t.Errorf("ParseArgs(--cmd x): %v, want ErrCmdBeforeOutputs", err)
	}
}

func TestArgsPredicates(t *testing.T) {
	tests := []struct {
		args           []string
		inputs, remote bool
	}{
		{nil, false, false},
		{[]string{"-n", "-l"}, false, false},
		{[]string{"in"}, true, false},
		{[]string{"--raw", ""}, true, false},
		{[]string{"-o", "out"}, false, true},
		{[]string{"--cache-success"}, false, true},
		{[]string{"in", "--fuzzy-cache"}, true, false},
	}
	for _, tt := range tests {
		a, err := ParseArgs(tt.args)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.HasInputs(); got != tt.inputs {
			t.Errorf("HasInputs(%q) = %v, want %v", tt.args, got, tt.inputs)
		}
		if got := a.RemoteCache(); got != tt.remote {
			t.Errorf("RemoteCache(%q) = %v, want %v", tt.args, got, tt.remote)
		}
	}
}
