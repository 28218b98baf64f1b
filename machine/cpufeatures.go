package machine

import (
	"fmt"
	"strings"
)

// cpuidReg names one of the four output registers of a CPUID leaf.
type cpuidReg int

const (
	regEAX cpuidReg = iota
	regEBX
	regECX
	regEDX
)

// featureBit locates a feature flag in CPUID.
type featureBit struct {
	leaf, subleaf uint32
	reg           cpuidReg
	bit           uint
}

// kvmFeatureLeaf is where KVM's paravirtual feature bits live.
const kvmFeatureLeaf = 0x4000_0001

// cpuFeatures maps QEMU's feature names (with '_' and '.' written as '-')
// to CPUID bits, so `-cpu host,-x2apic,kvm-pv-ipi=off` reads as in QEMU.
var cpuFeatures = func() map[string]featureBit {
	m := map[string]featureBit{}
	add := func(leaf, sub uint32, reg cpuidReg, names ...string) {
		for bit, n := range names {
			if n != "" {
				m[n] = featureBit{leaf, sub, reg, uint(bit)}
			}
		}
	}
	add(1, 0, regEDX, "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce",
		"cx8", "apic", "", "sep", "mtrr", "pge", "mca", "cmov", "pat", "pse36",
		"pn", "clflush", "", "ds", "acpi", "mmx", "fxsr", "sse", "sse2", "ss",
		"ht", "tm", "ia64", "pbe")
	add(1, 0, regECX, "pni", "pclmulqdq", "dtes64", "monitor", "ds-cpl", "vmx",
		"smx", "est", "tm2", "ssse3", "cid", "", "fma", "cx16", "xtpr", "pdcm",
		"", "pcid", "dca", "sse4-1", "sse4-2", "x2apic", "movbe", "popcnt",
		"tsc-deadline", "aes", "xsave", "osxsave", "avx", "f16c", "rdrand", "hypervisor")
	add(7, 0, regEBX, "fsgsbase", "tsc-adjust", "sgx", "bmi1", "hle", "avx2", "",
		"smep", "bmi2", "erms", "invpcid", "rtm", "", "", "mpx", "", "avx512f",
		"avx512dq", "rdseed", "adx", "smap", "avx512ifma", "pcommit", "clflushopt",
		"clwb", "intel-pt", "avx512pf", "avx512er", "avx512cd", "sha-ni", "avx512bw", "avx512vl")
	add(7, 0, regECX, "", "avx512vbmi", "umip", "pku", "ospke", "waitpkg",
		"avx512vbmi2", "", "gfni", "vaes", "vpclmulqdq", "avx512vnni",
		"avx512bitalg", "", "avx512-vpopcntdq", "", "la57", "", "", "", "", "", "rdpid",
		"", "", "cldemote", "", "movdiri", "movdir64b")
	add(7, 0, regEDX, "", "", "avx512-4vnniw", "avx512-4fmaps", "fsrm", "", "", "",
		"avx512-vp2intersect", "", "md-clear", "", "", "", "serialize", "", "tsx-ldtrk",
		"", "pconfig", "arch-lbr", "", "", "amx-bf16", "avx512-fp16", "amx-tile",
		"amx-int8", "spec-ctrl", "stibp", "flush-l1d", "arch-capabilities",
		"core-capability", "ssbd")
	add(0xd, 1, regEAX, "xsaveopt", "xsavec", "xgetbv1", "xsaves")
	add(0x8000_0001, 0, regECX, "lahf-lm", "cmp-legacy", "svm", "extapic",
		"cr8legacy", "abm", "sse4a", "misalignsse", "3dnowprefetch", "osvw", "ibs",
		"xop", "skinit", "wdt", "", "lwp", "fma4", "tce", "", "nodeid-msr", "", "tbm",
		"topoext", "perfctr-core", "perfctr-nb")
	add(0x8000_0001, 0, regEDX, "", "", "", "", "", "", "", "", "", "", "", "syscall",
		"", "", "", "", "", "", "", "", "nx", "", "mmxext", "", "", "fxsr-opt",
		"pdpe1gb", "rdtscp", "", "lm", "3dnowext", "3dnow")
	add(kvmFeatureLeaf, 0, regEAX, "kvmclock", "kvm-nopiodelay", "kvm-mmu",
		"kvmclock2", "kvm-asyncpf", "kvm-steal-time", "kvm-pv-eoi", "kvm-pv-unhalt",
		"", "kvm-pv-tlb-flush", "kvm-asyncpf-vmexit", "kvm-pv-ipi", "kvm-poll-control",
		"kvm-pv-sched-yield", "kvm-asyncpf-int", "kvm-msi-ext-dest-id",
		"kvm-hc-map-gpa-range", "kvm-migration-control")
	m["kvmclock-stable-bit"] = featureBit{kvmFeatureLeaf, 0, regEAX, 24}
	// QEMU spells a few of these more than one way.
	m["sse3"] = m["pni"]
	m["lahf_lm"] = m["lahf-lm"]
	m["sha"] = m["sha-ni"]
	m["i64"] = m["lm"]
	return m
}()

// FeatureChange is one `+feat`, `-feat` or `feat=on|off` from -cpu.
type FeatureChange struct {
	Name string
	On   bool
	bit  featureBit
}

// ParseCPU parses QEMU's `-cpu host[,+feat|-feat|feat=on|off…]`.
// Only the host model exists: the guest sees what KVM supports.
func ParseCPU(s string) ([]FeatureChange, error) {
	parts := strings.Split(s, ",")
	if model := parts[0]; model != "host" && model != "max" {
		return nil, fmt.Errorf("-cpu %s: unsupported CPU model %q (only host is supported)", s, model)
	}
	var out []FeatureChange
	for _, p := range parts[1:] {
		var name string
		var on bool
		switch {
		case p == "":
			continue
		case p[0] == '+' || p[0] == '-':
			name, on = p[1:], p[0] == '+'
		case strings.Contains(p, "="):
			k, v, _ := strings.Cut(p, "=")
			switch v {
			case "on", "true", "yes":
				on = true
			case "off", "false", "no":
			default:
				return nil, fmt.Errorf("-cpu: feature %q: value %q is not on or off", k, v)
			}
			name = k
		default:
			name, on = p, true
		}
		norm := strings.NewReplacer("_", "-", ".", "-").Replace(name)
		bit, ok := cpuFeatures[norm]
		if !ok {
			return nil, fmt.Errorf("-cpu: unknown CPU feature %q", name)
		}
		out = append(out, FeatureChange{Name: norm, On: on, bit: bit})
	}
	return out, nil
}
