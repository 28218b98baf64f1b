package tests

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vmm/tests/nested"
)

// rigTests are the tests that start with runsHere, and how long each
// may take in the outer machine (TCG time, under load). On a host that
// emulates guest kernel mode, the first of them to run takes every one
// of them this run selects into one outer machine, whose boot would
// otherwise cost ~20 s each; each test then takes its verdict from
// that run.
var rigTests = []rigTest{
	// 4 boots of 20-60 s, and room for one case whose boots all stall
	{"TestStockKernels", 3*time.Minute + stockBootTries*stockBootBound},
	{"TestStockShell", 4 * time.Minute},
	{"TestStockAgent", 6 * time.Minute},
	{"TestStockPowerdown", 4 * time.Minute},
	{"TestStockPanic", 4 * time.Minute},
	{"TestStockSnapshot", 6 * time.Minute},
}

// rigTries is how many outer machines a rig test may take: one, and
// more while it fails or the outer machine fails on its own. The
// outer machine fails now and then in ways that are its own (see
// takeVerdicts), and a test's verdict is its last try's.
const rigTries = 3

type rigTest struct {
	name   string
	budget time.Duration
}

// rigVerdict is one test's outcome in the outer machine.
type rigVerdict struct {
	verdict string // PASS, FAIL or SKIP
	log     string // its part of the outer machine's console
}

// rigBatch is the one run of the selected rig tests.
type rigBatch struct {
	once    sync.Once
	results map[string]rigVerdict
	err     error // the rig's own failure, for tests it left without a verdict
	report  string
}

var batch rigBatch

// selectedRigTests are the rig tests that -test.run and -test.skip
// select (matched on their top-level part, as go test does).
func selectedRigTests() []string {
	top := func(name string) *regexp.Regexp {
		f := flag.Lookup(name)
		if f == nil || f.Value.String() == "" {
			return nil
		}
		p, _, _ := strings.Cut(f.Value.String(), "/")
		re, err := regexp.Compile(p)
		if err != nil {
			return nil
		}
		return re
	}
	run, skip := top("test.run"), top("test.skip")
	var out []string
	for _, r := range rigTests {
		if (run == nil || run.MatchString(r.name)) && (skip == nil || !skip.MatchString(r.name)) {
			out = append(out, r.name)
		}
	}
	return out
}

// inRig returns t's verdict from the batch, running the batch first if
// t is the first rig test of this run.
func inRig(t *testing.T) rigVerdict {
	t.Helper()
	known := slices.ContainsFunc(rigTests, func(r rigTest) bool { return r.name == t.Name() })
	if !known {
		t.Fatalf("%s calls runsHere but is not in rigTests (tests/rig_batch_test.go)", t.Name())
	}
	batch.once.Do(func() {
		names := selectedRigTests()
		if !slices.Contains(names, t.Name()) {
			names = append(names, t.Name())
		}
		batch.run(t, names)
		t.Logf("%s ran first: it ran %s in one outer machine\n%s", t.Name(), strings.Join(names, ", "), batch.report)
	})
	if v, ok := batch.results[t.Name()]; ok {
		return v
	}
	if batch.err != nil {
		t.Fatalf("nested rig: %v", batch.err)
	}
	// Not selected when the batch ran (a -run pattern this file could
	// not read): run it alone.
	var alone rigBatch
	alone.run(t, []string{t.Name()})
	if v, ok := alone.results[t.Name()]; ok {
		return v
	}
	t.Fatalf("nested rig: %v", alone.err)
	return rigVerdict{}
}

// run runs names in the outer machine; tests the outer machine failed
// on its own (nested.Retryable) before they had a verdict, and tests
// that failed, get more tries (rigTries in all), each in a new outer
// machine.
func (b *rigBatch) run(t *testing.T, names []string) {
	rigOnce.Do(func() { rig, rigErr = nested.Prepare(filepath.Join(repoRoot(), "build")) })
	if rigErr != nil {
		b.err = rigErr
		return
	}
	self, err := os.Executable()
	if err != nil {
		b.err = err
		return
	}
	env := []string{"VMM_BIN=" + vmmBinary(t)}
	for _, e := range os.Environ() {
		if (strings.HasPrefix(e, "VMM_") && !strings.HasPrefix(e, "VMM_BIN=")) || strings.HasPrefix(e, "CI=") {
			env = append(env, e)
		}
	}
	b.results = map[string]rigVerdict{}
	var report strings.Builder
	pending := slices.Clone(names) // DeleteFunc below clears what it drops
	for try := 1; try <= rigTries && len(pending) > 0; try++ {
		var budget time.Duration
		for _, r := range rigTests {
			if slices.Contains(pending, r.name) {
				budget += r.budget
			}
		}
		var console syncBuffer
		var live io.Writer = &console
		// VMM_RIG_CONSOLE=FILE shows the outer machine's console as it
		// runs (tail -f FILE), where the log has it only at the end.
		if path := os.Getenv("VMM_RIG_CONSOLE"); path != "" {
			if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
				defer f.Close()
				live = io.MultiWriter(&console, f)
			}
		}
		start := time.Now()
		status, err := rig.Run(context.Background(), nested.Command{
			Args: []string{self, "-test.run", "^(" + strings.Join(pending, "|") + ")$", "-test.v", "-test.count=1",
				"-test.timeout=" + budget.String()},
			Env: env, Dir: filepath.Join(repoRoot(), "tests"),
			Timeout: budget + 3*time.Minute, Console: live,
		})
		sections := rigSections(console.String())
		again := takeVerdicts(b.results, sections, pending, try == rigTries)
		for _, n := range again {
			why := "a cause the test did not name"
			if strings.Contains(sections[n].log, nested.MarkInterruptLost) {
				why = "an interrupt the outer machine lost"
			}
			fmt.Fprintf(&report, "%s failed in outer machine %d (%s); its first try:\n%s", n, try, why, sections[n].log)
		}
		fmt.Fprintf(&report, "try %d (%s): %v, status %d, err %v\n%s", try, strings.Join(pending, ", "),
			time.Since(start).Round(time.Second), status, err, sections[""].log)
		pending = slices.DeleteFunc(pending, func(n string) bool { _, done := b.results[n]; return done })
		b.err = err
		if err == nil && len(pending) > 0 {
			b.err = fmt.Errorf("the outer machine's command ended (status %d) before %s had a verdict; its console:\n%s",
				status, strings.Join(pending, ", "), console.String())
		}
		if !nested.Retryable(err) && len(again) == 0 {
			break
		}
		if len(pending) > 0 {
			why := "a test failed in it"
			if nested.Retryable(err) {
				why = errors.Unwrap(err).Error()
			}
			fmt.Fprintf(&report, "the outer machine failed on its own (%s): running %s again\n", why, strings.Join(pending, ", "))
		}
	}
	b.report = report.String()
}

// takeVerdicts moves the verdicts of pending tests from sections into
// results, except (unless last) failures: those are returned, to run
// again in a new outer machine. The outer machine (L1's KVM on
// QEMU's emulated SVM) fails in ways of its own: interrupts it never
// delivers (the test then logs nested.MarkInterruptLost), kernel
// panics in L1, stalls no look explains. Earlier failures stay in the
// report, and the last try's verdict is the test's.
func takeVerdicts(results, sections map[string]rigVerdict, pending []string, last bool) (again []string) {
	for _, n := range pending {
		v, ok := sections[n]
		if !ok || v.verdict == "" {
			continue
		}
		if !last && v.verdict == "FAIL" {
			again = append(again, n)
			continue
		}
		results[n] = v
	}
	return again
}

// rigSections splits go test -v output by top-level test: each test's
// lines from its "=== RUN" to the next top-level "=== RUN", and its
// verdict from its "--- PASS/FAIL/SKIP" line. Lines before the first
// test go to "".
func rigSections(out string) map[string]rigVerdict {
	secs := map[string]rigVerdict{}
	cur := ""
	var b strings.Builder
	flush := func() {
		v := secs[cur]
		v.log += b.String()
		secs[cur] = v
		b.Reset()
	}
	for _, l := range strings.SplitAfter(out, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), "=== RUN   "); ok && !strings.Contains(name, "/") {
			flush()
			cur = name
		}
		b.WriteString(l)
		for _, verdict := range []string{"PASS", "FAIL", "SKIP"} {
			if name, ok := strings.CutPrefix(l, "--- "+verdict+": "); ok {
				if n, _, ok := strings.Cut(name, " ("); ok && !strings.Contains(n, "/") {
					v := secs[n]
					v.verdict = verdict
					secs[n] = v
				}
			}
		}
	}
	flush()
	return secs
}

// TestRigSections splits a rig console as go test -v prints it: subtests
// and the outer kernel's lines stay in their test's part, a test the
// outer machine cut short has no verdict.
func TestRigSections(t *testing.T) {
	out := "[    1.0] kvm_amd: Nested Paging enabled\n" +
		"=== RUN   TestStockKernels\n    stock_test.go:82: running in the nested rig's outer machine (TCG time)\n" +
		"=== RUN   TestStockKernels/cloud/virtio-serial-pci/smp4/poweroff\n" +
		"[   18.7] kvm [122]: vcpu0, guest rIP: 0xffffffffb8a73744 Unhandled WRMSR(0xc0010007) = 0xffff\n" +
		"--- FAIL: TestStockKernels (99.89s)\n    --- FAIL: TestStockKernels/cloud/virtio-serial-pci/smp4/poweroff (18.54s)\n" +
		"=== RUN   TestStockPanic\n--- SKIP: TestStockPanic (0.00s)\n" +
		"=== RUN   TestStockShell\n--- PASS: TestStockShell (102.58s)\n" +
		"=== RUN   TestStockSnapshot\n=== RUN   TestStockSnapshot/x\n"
	s := rigSections(out)
	for name, want := range map[string]string{"TestStockKernels": "FAIL", "TestStockPanic": "SKIP",
		"TestStockShell": "PASS", "TestStockSnapshot": "", "": ""} {
		if s[name].verdict != want {
			t.Errorf("rigSections(...)[%q].verdict = %q; want %q", name, s[name].verdict, want)
		}
	}
	if k := s["TestStockKernels"].log; !strings.Contains(k, "Unhandled WRMSR") || !strings.HasPrefix(k, "=== RUN   TestStockKernels\n") ||
		!strings.HasSuffix(k, "poweroff (18.54s)\n") {
		t.Errorf("TestStockKernels's part = %q; want from its RUN line to its subtest's verdict", k)
	}
	if s[""].log != "[    1.0] kvm_amd: Nested Paging enabled\n" {
		t.Errorf("the part before any test = %q", s[""].log)
	}
	if len(s) != 5 {
		t.Errorf("rigSections found %d parts; want 5: %v", len(s), s)
	}
}

// TestTakeVerdicts: a failure runs again (lost interrupt or not),
// unless it was the last try; other verdicts stand, a test without one
// waits.
func TestTakeVerdicts(t *testing.T) {
	sections := map[string]rigVerdict{
		"TestA": {verdict: "FAIL", log: "    stock_test.go:125: " + nested.MarkInterruptLost + ": vCPU 0: vector 0xec pending\n"},
		"TestB": {verdict: "FAIL", log: "exit status 1\n"},
		"TestC": {verdict: "PASS"},
		"TestD": {log: "=== RUN   TestD\n"},
	}
	pending := []string{"TestA", "TestB", "TestC", "TestD"}
	results := map[string]rigVerdict{}
	if again := takeVerdicts(results, sections, pending, false); !slices.Equal(again, []string{"TestA", "TestB"}) || len(results) != 1 ||
		results["TestC"].verdict != "PASS" {
		t.Errorf("first try: again %v, results %v; want TestA and TestB to run again, TestC passed", again, results)
	}
	results = map[string]rigVerdict{}
	if again := takeVerdicts(results, sections, pending, true); len(again) != 0 || results["TestA"].verdict != "FAIL" ||
		results["TestB"].verdict != "FAIL" || len(results) != 3 {
		t.Errorf("last try: again %v, results %v; want the failures to stand", again, results)
	}
}
