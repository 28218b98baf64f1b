package boot

import "testing"

// fuzzMem is shared across iterations: allocating guest memory per input
// would dominate the run time.
var fuzzMem = lowMem(fuzzMemSize)

const fuzzMemSize = 8 << 20

// FuzzLoad feeds arbitrary kernel files to Load: it must return an error
// or a consistent Entry, never panic or write outside RAM.
func FuzzLoad(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzLoad.
	f.Add([]byte("\x7fELF"), "")
	f.Fuzz(func(t *testing.T, kernel []byte, cmdline string) {
		e, err := Load(fuzzMem, fuzzMem.ram, kernel, []byte("initrd"), cmdline)
		if err != nil {
			return
		}
		if e.KernelStart >= e.KernelEnd || e.KernelEnd > fuzzMemSize {
			t.Fatalf("Load() kernel [%#x, %#x) outside RAM", e.KernelStart, e.KernelEnd)
		}
		if e.EntryPoint < e.KernelStart || e.EntryPoint >= e.KernelEnd {
			t.Fatalf("Load() entry %#x outside the kernel [%#x, %#x)", e.EntryPoint, e.KernelStart, e.KernelEnd)
		}
		if e.Initrd < e.KernelEnd || e.Initrd+e.InitrdSize > fuzzMemSize {
			t.Fatalf("Load() initrd [%#x, +%#x) not between the kernel's end %#x and the end of RAM", e.Initrd, e.InitrdSize, e.KernelEnd)
		}
	})
}
