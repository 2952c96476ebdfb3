package kallsyms

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// synthetic mimics /proc/kallsyms: sorted kernel text with aliases, data
// and end markers, then unsorted module symbols.
const synthetic = `ffffffff81000000 T _stext
ffffffff81000000 T __pi__text
ffffffff81000000 t local_alias
ffffffff81000000 T startup_64
ffffffff81000100 t do_one_initcall
ffffffff81000200 T __x64_sys_read
ffffffff81000200 W __weak_sys_read
0000000000000000 A fixed_percpu_data
00000000000a1b2c A __kcfi_typeid_foo
ffffffff81000300 W weak_fn
ffffffff81000400 T _etext
ffffffff81100000 R __start_rodata
ffffffff81100010 r some_table
ffffffff81200000 T _sinittext
ffffffff81200100 T _einittext
ffffffff81300000 D some_data
ffffffffc0a02000 t nft_second	[nf_tables]
ffffffffc0a01000 t nft_first	[nf_tables]
ffffffffc0a02100 d nft_data	[nf_tables]
ffffffffc0b00000 T ext4_read	[ext4]
ffffffffc0201000 t ftrace_trampoline	[__builtin__ftrace]
ffffffffc0c00000 t bpf_prog_6deef7357e7b4530_sd_fw_ingress	[bpf]
`

func TestParseLookup(t *testing.T) {
	tab, err := Parse(strings.NewReader(synthetic))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != 10 {
		t.Errorf("Len = %d, want 10", tab.Len())
	}
	tests := []struct {
		addr         uint64
		name, module string
	}{
		{0x0, "", ""},
		{0xffffffff80ffffff, "", ""},           // below the first symbol
		{0xffffffff81000000, "startup_64", ""}, // global, no leading underscore
		{0xffffffff810000ff, "startup_64", ""},
		{0xffffffff81000104, "do_one_initcall", ""},
		{0xffffffff81000204, "__x64_sys_read", ""}, // T over W at one address
		{0xffffffff81000300, "weak_fn", ""},
		{0xffffffff81000400, "", ""}, // _etext
		{0xffffffff81100008, "", ""}, // rodata
		{0xffffffff81200004, "_sinittext", ""},
		{0xffffffff81200100, "", ""}, // _einittext
		{0xffffffff81300004, "", ""},
		{0xffffffffc0201008, "ftrace_trampoline", "__builtin__ftrace"},
		{0xffffffffc0a01004, "nft_first", "nf_tables"},
		{0xffffffffc0a02004, "nft_second", "nf_tables"},
		{0xffffffffc0a02100, "", ""}, // module data ends module text
		{0xffffffffc0b00010, "ext4_read", "ext4"},
		{0xffffffffc0c00010, "bpf_prog_6deef7357e7b4530_sd_fw_ingress", "bpf"},
	}
	for _, tt := range tests {
		name, module, ok := tab.Lookup(tt.addr)
		if name != tt.name || module != tt.module || ok != (tt.name != "") {
			t.Errorf("Lookup(%#x) = %q, %q, %v; want %q, %q", tt.addr, name, module, ok, tt.name, tt.module)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in   string
		restricted bool
	}{
		{"restricted", "0000000000000000 T _stext\n0000000000000000 t foo\n0000000000000000 t bar\t[mod]\n", true},
		{"empty", "", false},
		{"only data", "ffffffff81300000 D some_data\n", false},
		{"no type", "ffffffff81000000\n", false},
		{"bad address", "ffffffffg1000000 T x\n", false},
		{"address too long", "1ffffffff81000000 T x\n", false},
		{"no name", "ffffffff81000000 T \n", false},
		{"unterminated module", "ffffffff81000000 T x\t[mod\n", false},
		{"two-char type", "ffffffff81000000 TT x\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %d symbols", tab.Len())
			}
			if errors.Is(err, ErrRestricted) != tt.restricted {
				t.Errorf("err = %v; restricted want %v", err, tt.restricted)
			}
		})
	}
}

func TestParseTolerates(t *testing.T) {
	in := "ffffffff81000000 T first\r\n\n   \nffffffff81000100 t last" // CRLF, blank lines, no final newline
	tab, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if name, _, ok := tab.Lookup(0xffffffff81000104); !ok || name != "last" || tab.Len() != 2 {
		t.Errorf("Lookup = %q, %v; Len %d", name, ok, tab.Len())
	}
}

// liveKallsyms returns /proc/kallsyms, skipping when its addresses are hidden.
func liveKallsyms(t testing.TB) []byte {
	data, err := os.ReadFile(Path)
	if err != nil {
		t.Skipf("no %s: %v", Path, err)
	}
	if os.Geteuid() != 0 || bytes.HasPrefix(data, []byte("0000000000000000 ")) {
		t.Skip("kallsyms addresses hidden: not root or kptr_restrict")
	}
	return data
}

// fileAddr finds a symbol's address in kallsyms text.
func fileAddr(t *testing.T, data []byte, name string) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[2] == name && strings.ContainsAny(f[1], "tT") {
			addr, err := strconv.ParseUint(f[0], 16, 64)
			return addr, err == nil
		}
	}
	return 0, false
}

func TestLive(t *testing.T) {
	data := liveKallsyms(t)
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, name := range []string{"__x64_sys_read", "read_zero", "schedule", "do_syscall_64"} {
		addr, ok := fileAddr(t, data, name)
		if !ok {
			continue
		}
		found++
		if got, mod, ok := tab.Lookup(addr + 4); !ok || got != name || mod != "" {
			t.Errorf("Lookup(%s+4) = %q, %q, %v", name, got, mod, ok)
		}
	}
	if found == 0 {
		t.Error("none of the well-known kernel functions is in kallsyms")
	}
	if addr, ok := fileAddr(t, data, "_etext"); ok {
		if name, _, ok := tab.Lookup(addr); ok {
			t.Errorf("Lookup(_etext) = %q, want past the end of text", name)
		}
	}
	if tab.Len() < 1000 {
		t.Errorf("Len = %d", tab.Len())
	}
}

// TestLiveRetained holds the index of the real file to its memory budget.
func TestLiveRetained(t *testing.T) {
	data := liveKallsyms(t)
	retained, tab := retainedBytes(t, data)
	t.Logf("%d symbols, %d bytes retained (%.1f per symbol)", tab.Len(), retained, float64(retained)/float64(tab.Len()))
	if retained > 8<<20 {
		t.Errorf("retained %d bytes, budget 8 MiB", retained)
	}
}

func retainedBytes(t testing.TB, data []byte) (uint64, *Table) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(data) // else freeing the input hides the index
	runtime.KeepAlive(tab)
	return after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc), tab
}

func BenchmarkParse(b *testing.B) {
	data := liveKallsyms(b)
	retained, _ := retainedBytes(b, data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(retained), "retained-B")
}

// BenchmarkLoad includes the kernel's own cost of generating the file.
func BenchmarkLoad(b *testing.B) {
	liveKallsyms(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	tab, err := Parse(bytes.NewReader(liveKallsyms(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.Lookup(tab.addrs[i%len(tab.addrs)] + 4)
		i += 7919
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(synthetic))
	f.Add([]byte("0000000000000000 T _stext\n"))
	f.Add([]byte("ffffffff81000000 T x\t[m]\nffffffff80000000 t y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, a := range tab.addrs {
			for _, probe := range []uint64{a - 1, a, a + 1} {
				if name, _, ok := tab.Lookup(probe); ok && name == "" {
					t.Fatalf("Lookup(%#x): ok with an empty name", probe)
				}
			}
		}
	})
}
