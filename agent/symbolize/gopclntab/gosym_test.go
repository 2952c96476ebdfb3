package gopclntab

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"strconv"
	"strings"
	"testing"
)

// printName is runtime.funcNameForPrint: type arguments print as "[...]".
func printName(name string) string {
	i := strings.IndexByte(name, '[')
	j := strings.LastIndexByte(name, ']')
	if i < 0 || j <= i {
		return name
	}
	return name[:i] + "[...]" + name[j+1:]
}

// gosymTable opens the unstripped binary data with debug/gosym, which
// needs the runtime.text symbol.
func gosymTable(t *testing.T, data []byte) *gosym.Table {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var pcln []byte
	for _, s := range ef.Sections {
		if strings.HasSuffix(s.Name, ".gopclntab") { // .data.rel.ro.gopclntab in older PIEs
			if pcln, err = s.Data(); err != nil {
				t.Fatal(err)
			}
		}
	}
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var text uint64
	for _, s := range syms {
		if s.Name == "runtime.text" {
			text = s.Value
		}
	}
	st, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testGosym compares, for PCs across every function of the unstripped
// builds, the physical function (name and entry) and the innermost file
// and line with debug/gosym, which reads the same tables independently.
func testGosym(t *testing.T, bins map[string]string) {
	for _, name := range []string{"exe", "pie"} {
		if bins[name] == "" {
			continue
		}
		t.Run("gosym-"+name, func(t *testing.T) {
			tab, data := openFile(t, bins[name])
			st := gosymTable(t, data)
			if len(st.Funcs) != tab.NumFuncs() {
				t.Fatalf("debug/gosym has %d functions, we have %d", len(st.Funcs), tab.NumFuncs())
			}
			bad := 0
			for _, fn := range st.Funcs {
				for _, pc := range samplePCs(fn.Entry, fn.End, 8) {
					if msg := compareGosym(tab, st, &fn, pc); msg != "" {
						if bad++; bad <= 10 {
							t.Errorf("pc %#x: %s", pc, msg)
						}
					}
				}
			}
		})
	}
}

func compareGosym(tab *Table, st *gosym.Table, fn *gosym.Func, pc uint64) string {
	entry, name, ok := tab.FuncEntry(pc)
	if !ok || entry != fn.Entry || name != printName(fn.Name) {
		return "FuncEntry = " + name + ", want " + fn.Name
	}
	frames := tab.Frames(pc, nil)
	if len(frames) == 0 {
		return "no frames"
	}
	file, line, _ := st.PCToLine(pc)
	if file == "" {
		file, line = "?", 0 // how the runtime prints an unknown position
	}
	if frames[0].File != file || frames[0].Line != line {
		return "innermost frame " + frameStrings(frames[:1])[0] + ", debug/gosym says " + file + ":" + strconv.Itoa(line)
	}
	return ""
}
