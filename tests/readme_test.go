package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's code blocks each follow a marker comment that says what
// the test does with them:
//
//	<!-- example: run -->          run the block with sh (make lines: below)
//	<!-- example: run NAME -->     run it with readmeRunners[NAME] (a pty,
//	                               a second terminal, typed input)
//	<!-- example: output -->       the output of the run block before it:
//	                               every line in order, "…" standing for
//	                               any text within a line, or for any lines
//	                               when alone on one
//	<!-- example: not run: WHY --> not run, and why
//
// A block with no marker fails the test, so a new example is either run
// or says why not.

// readmeExample is one marked code block of README.md.
type readmeExample struct {
	line   int    // of the opening fence
	kind   string // "run", "output" or "not run"
	name   string // the runner, for "run NAME"
	code   string
	output []string // for a run block followed by an output block
}

var exampleMarker = regexp.MustCompile(`^<!-- example: (run(?: ([a-z0-9-]+))?|output|not run: (.+)) -->$`)

// parseReadme returns the README's run and not-run examples, output
// blocks attached to the run block before them.
func parseReadme(t *testing.T, text string) []*readmeExample {
	t.Helper()
	var out []*readmeExample
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			continue
		}
		start := i
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
			j++
		}
		if j == len(lines) {
			t.Fatalf("README.md:%d: code block never closed", start+1)
		}
		code := strings.Join(lines[i+1:j], "\n")
		i = j
		var m []string
		if start > 0 {
			m = exampleMarker.FindStringSubmatch(lines[start-1])
		}
		if m == nil {
			t.Errorf("README.md:%d: code block without an <!-- example: run|output|not run: WHY --> line before it", start+1)
			continue
		}
		ex := &readmeExample{line: start + 1, code: code}
		switch {
		case m[1] == "output":
			if len(out) == 0 || out[len(out)-1].kind != "run" || out[len(out)-1].output != nil {
				t.Errorf("README.md:%d: an output block not right after a run block", start+1)
				continue
			}
			out[len(out)-1].output = strings.Split(code, "\n")
			continue
		case strings.HasPrefix(m[1], "run"):
			ex.kind, ex.name = "run", m[2]
		default:
			ex.kind = "not run"
		}
		out = append(out, ex)
	}
	return out
}

// TestReadmeExamples runs every README example marked to run, as
// written, from a folder that looks like the checkout after make test:
// tests/ is the checkout's, build/ holds the checkout's build/linux,
// build/stock and build/debian* and build/vmm (vmmBinary), and files
// the examples create (sockets) stay in it. Each run example is a
// subtest; they run in parallel.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples := parseReadme(t, string(b))
	needKVM(t)
	dir := readmeView(t)
	ran := 0
	for _, ex := range examples {
		if ex.kind != "run" {
			continue
		}
		runner := readmeRunners[ex.name]
		if runner == nil {
			t.Errorf("README.md:%d: no runner %q in readmeRunners", ex.line, ex.name)
			continue
		}
		ran++
		t.Run(fmt.Sprintf("line%d-%s", ex.line, strings.TrimSuffix("run-"+ex.name, "-")), func(t *testing.T) {
			t.Parallel()
			runner(t, dir, ex)
		})
	}
	if ran < 5 {
		t.Errorf("%d README examples marked to run; want at least 5 (the markers were lost?)", ran)
	}
}

// readmeView makes the folder the examples run in.
func readmeView(t *testing.T) string {
	t.Helper()
	root := repoRoot()
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "tests"), filepath.Join(dir, "tests")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"linux", "stock", "debian", "debian-cloud"} {
		if err := os.Symlink(filepath.Join(root, "build", d), filepath.Join(dir, "build", d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(vmmBinary(t), filepath.Join(dir, "build", "vmm")); err != nil {
		t.Fatal(err)
	}
	guestELF(t)
	return dir
}

// readmeBoot bounds an example's Linux boot: a test-kernel boot that
// takes 15 s on an idle host took over 10 minutes here with a CI run and
// other tests' VMs on the same two cores.
const readmeBoot = 25 * time.Minute

// readmeRunners run the examples marked "run NAME"; "" is plain sh.
var readmeRunners = map[string]func(t *testing.T, dir string, ex *readmeExample){
	"":            runPlainExample,
	"com1-socket": runCOM1SocketExample,
	"hvc0-shell":  runHvc0ShellExample,
	"qmp-session": runQMPSessionExample,
}

// commands splits a block into shell commands (backslash continuations
// joined, comments and blank lines dropped).
func commands(code string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(code, "\n") {
		if cur == "" && (strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#")) {
			continue
		}
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			cur += c
			continue
		}
		out = append(out, cur+l)
		cur = ""
	}
	return out
}

// splitTerminals splits a block at its "# in another terminal" comment:
// what runs first, and what the second terminal runs, and that comment.
func splitTerminals(t *testing.T, ex *readmeExample) (first, second []string, comment string) {
	t.Helper()
	before, after, ok := strings.Cut(ex.code, "\n# in another terminal")
	if !ok {
		t.Fatalf("README.md:%d: no \"# in another terminal\" line:\n%s", ex.line, ex.code)
	}
	comment, rest, _ := strings.Cut(after, "\n")
	first, second = commands(before), commands(rest)
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("README.md:%d: want one command in each terminal, got %q and %q", ex.line, first, second)
	}
	return first, second, comment
}

// checkMake checks a `make TARGETS` line against the Makefile (make -n):
// the examples' make lines name what make test has built already, and
// are not run again here.
func checkMake(t *testing.T, ex *readmeExample, cmd string) {
	t.Helper()
	args := append([]string{"-n", "-s", "-C", repoRoot()}, strings.Fields(cmd)[1:]...)
	if r := run(t, time.Minute, "make", args...); r.status != 0 {
		t.Errorf("README.md:%d: %q: make -n says status %d:\n%s", ex.line, cmd, r.status, r.stderr)
	}
}

// runPlainExample runs the block's commands (make lines checked with
// make -n) in one sh, and checks its status is 0 and its output matches
// the output block, if any.
func runPlainExample(t *testing.T, dir string, ex *readmeExample) {
	var script []string
	for _, c := range commands(ex.code) {
		if strings.HasPrefix(c, "make ") {
			checkMake(t, ex, c)
			continue
		}
		script = append(script, c)
	}
	cmd := exec.Command("sh", "-c", strings.Join(script, "\n"))
	cmd.Dir = dir
	p := startGroup(t, cmd)
	select {
	case <-p.done:
	case <-time.After(readmeBoot):
		t.Fatalf("README.md:%d: still running after %v\n%s", ex.line, readmeBoot, &p.con)
	}
	if p.status() != 0 {
		t.Errorf("README.md:%d: status %d (%v); want 0\n%s", ex.line, p.status(), p.err, &p.con)
	}
	if ex.output != nil {
		matchOutput(t, ex, p.con.String())
	}
}

// matchOutput checks out against the example's output block.
func matchOutput(t *testing.T, ex *readmeExample, out string) {
	t.Helper()
	got := strings.Split(strings.TrimRight(strings.ReplaceAll(out, "\r", ""), "\n"), "\n")
	if !linesMatch(ex.output, got) {
		t.Errorf("README.md:%d: output does not match the README's:\nwant\n%s\ngot\n%s", ex.line, strings.Join(ex.output, "\n"), out)
	}
}

// linesMatch matches got against want: every want line in order, a line
// "…" skipping any number of lines, "…" within a line any text.
func linesMatch(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "…" {
		for i := 0; i <= len(got); i++ {
			if linesMatch(want[1:], got[i:]) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 {
		return false
	}
	parts := strings.Split(want[0], "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	if !regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got[0]) {
		return false
	}
	return linesMatch(want[1:], got[1:])
}

func TestLinesMatch(t *testing.T) {
	for _, c := range []struct {
		want, got string
		ok        bool
	}{
		{"a\nb", "a\nb", true},
		{"a\nb", "a\nc", false},
		{"a\n…\nc", "a\nx\ny\nc", true},
		{"a\n…\nc", "a\nc", true},
		{"a\n…\nc", "a\nc\nd", false},
		{"{\"QMP\": …}", "{\"QMP\": {\"version\": 1}}", true},
		{"x…", "y", false},
	} {
		if got := linesMatch(strings.Split(c.want, "\n"), strings.Split(c.got, "\n")); got != c.ok {
			t.Errorf("linesMatch(%q, %q) = %v; want %v", c.want, c.got, got, c.ok)
		}
	}
}

// waitFile polls until path exists or p ends or the timeout passes.
func waitFile(t *testing.T, path string, p *vmProc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("ended (%v) before %s existed\n%s", p.err, path, &p.con)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v\n%s", path, timeout, &p.con)
		}
	}
}

// startGroup is startVM for a command run through sh: the command gets
// a process group of its own, killed whole at the end of the test, so a
// vmm that sh started is not left running when the test ends early.
func startGroup(t *testing.T, cmd *exec.Cmd) *vmProc {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := startVM(t, cmd)
	pid := cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	return p
}

// socketIn returns the path of the unix socket a command names
// (UNIX-CONNECT:P, path=P or unix:P), relative to dir.
func socketIn(t *testing.T, dir, cmd string) string {
	t.Helper()
	m := regexp.MustCompile(`(?:UNIX-CONNECT:|path=|unix:)([^ ,]+)`).FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("no socket path in %q", cmd)
	}
	if filepath.IsAbs(m[1]) {
		return m[1]
	}
	return filepath.Join(dir, m[1])
}

// runCOM1SocketExample: vmm waits for the first client on COM1's
// socket; the second terminal's socat (on a pty, as typed) connects;
// three keys typed there come back in the guest's line; the guest then
// ends, vmm with status 0, and socat with it.
func runCOM1SocketExample(t *testing.T, dir string, ex *readmeExample) {
	first, second, _ := splitTerminals(t, ex)
	vm := exec.Command("sh", "-c", first[0])
	vm.Dir = dir
	p := startGroup(t, vm)
	waitConsole(t, p, "waiting", time.Minute) // the wait=on line
	waitFile(t, socketIn(t, dir, first[0]), p, time.Minute)

	master, slave := openPty(t)
	defer master.Close()
	var diag syncBuffer
	sc := exec.Command("sh", "-c", second[0])
	sc.Dir = dir
	sc.Stdin, sc.Stdout, sc.Stderr = slave, slave, &diag
	sp := startGroup(t, sc)
	slave.Close()
	go io.Copy(&sp.con, master)
	term := &terminal{t: t, p: sp, master: master, diag: &diag}
	term.expect("guest: hello", time.Minute)
	term.write("abc")
	term.expect(`guest: serial got "abc"`, time.Minute)
	for _, q := range []*vmProc{p, sp} {
		select {
		case <-q.done:
		case <-time.After(time.Minute):
			t.Fatalf("README.md:%d: still running a minute after the guest's line\nvmm:\n%s\nsocat:\n%s%s", ex.line, &p.con, &sp.con, &diag)
		}
	}
	if p.status() != 0 || sp.status() != 0 {
		t.Errorf("README.md:%d: vmm status %d, socat %d; want 0 and 0\nvmm:\n%s\nsocat:\n%s%s", ex.line, p.status(), sp.status(), &p.con, &sp.con, &diag)
	}
}

// runHvc0ShellExample: the shell comes up on hvc0 (the console on
// this terminal, a pty); the second terminal's socat (as printed, stdin
// and stdout pipes) gets what the guest command in the README's comment
// writes; Ctrl-A x ends vmm with status 0.
func runHvc0ShellExample(t *testing.T, dir string, ex *readmeExample) {
	first, second, comment := splitTerminals(t, ex)
	m := regexp.MustCompile("`([^`]+)` in the guest").FindStringSubmatch(comment)
	if m == nil {
		t.Fatalf("README.md:%d: the comment %q names no guest command", ex.line, comment)
	}
	guestCmd := m[1]
	g := shellGuest{Boot: readmeBoot}

	master, slave := openPty(t)
	defer master.Close()
	var diag syncBuffer
	vm := exec.Command("sh", "-c", first[0])
	vm.Dir = dir
	vm.Stdin, vm.Stdout, vm.Stderr = slave, slave, &diag
	p := startGroup(t, vm)
	slave.Close()
	go io.Copy(&p.con, master)
	term := &terminal{t: t, p: p, master: master, diag: &diag}
	term.expect("vmm-shell: ready", g.boot())
	term.expect(shellPrompt, g.step())
	term.run("cat /sys/class/tty/console/active", "\nhvc0\n", g.step())

	sc := exec.Command("sh", "-c", second[0])
	sc.Dir = dir
	var scOut, scErr syncBuffer
	sc.Stdout, sc.Stderr = &scOut, &scErr
	in, err := sc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sp := startGroup(t, sc)
	term.run(guestCmd, "\n"+shellPrompt, g.step())
	want := "hi\n"
	deadline := time.Now().Add(g.step())
	for scOut.String() != want {
		select {
		case <-sp.done:
			if scOut.String() != want {
				t.Fatalf("README.md:%d: socat ended (%v) with %q; want %q\n%s", ex.line, sp.err, scOut.String(), want, &scErr)
			}
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("README.md:%d: socat printed %q; want %q after %q in the guest\n%s", ex.line, scOut.String(), want, guestCmd, &scErr)
		}
	}
	term.write("\x01x")
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("README.md:%d: vmm still running 10 s after Ctrl-A x\n%s", ex.line, &diag)
	}
	if p.status() != 0 {
		t.Errorf("README.md:%d: vmm status %d after Ctrl-A x; want 0\n%s", ex.line, p.status(), &diag)
	}
}

// runQMPSessionExample: the first command (vmm, put in the background
// with & in the README: here a process of its own) and, once its socket
// exists, the socat line with pipes; the transcript's "{"execute"…"
// lines are typed into socat, the other lines are what it must print, in
// order ("…" as in output blocks). Then quit ends vmm with status 0.
func runQMPSessionExample(t *testing.T, dir string, ex *readmeExample) {
	cmds := commands(ex.code)
	if len(cmds) < 3 || !strings.HasSuffix(cmds[0], " &") || !strings.HasPrefix(cmds[1], "socat ") {
		t.Fatalf("README.md:%d: want `vmm … &`, `socat …` and a transcript:\n%s", ex.line, ex.code)
	}
	vm := exec.Command("sh", "-c", "exec "+strings.TrimSuffix(cmds[0], " &"))
	vm.Dir = dir
	p := startGroup(t, vm)
	waitFile(t, socketIn(t, dir, cmds[0]), p, time.Minute)

	sc := exec.Command("sh", "-c", cmds[1])
	sc.Dir = dir
	in, err := sc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	outR, outW := io.Pipe()
	var scErr syncBuffer
	sc.Stdout, sc.Stderr = outW, &scErr
	sp := startGroup(t, sc)
	lines := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(outR)
		for s.Scan() {
			lines <- strings.TrimRight(s.Text(), "\r")
		}
		close(lines)
	}()
	t.Cleanup(func() { outW.Close() })
	for _, l := range cmds[2:] {
		if strings.HasPrefix(l, `{"execute"`) {
			if _, err := io.WriteString(in, l+"\n"); err != nil {
				t.Fatalf("write to socat: %v", err)
			}
			continue
		}
		select {
		case got, ok := <-lines:
			if !ok {
				t.Fatalf("README.md:%d: socat ended before %q\n%s", ex.line, l, &scErr)
			}
			if !linesMatch([]string{l}, []string{got}) {
				t.Fatalf("README.md:%d: socat printed %q; want %q", ex.line, got, l)
			}
		case <-time.After(time.Minute):
			t.Fatalf("README.md:%d: no %q from socat within a minute\n%s", ex.line, l, &scErr)
		}
	}
	io.WriteString(in, `{"execute":"quit"}`+"\n")
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("README.md:%d: vmm still running a minute after quit\n%s", ex.line, &p.con)
	}
	if p.status() != 0 {
		t.Errorf("README.md:%d: vmm status %d after quit; want 0\n%s", ex.line, p.status(), &p.con)
	}
	in.Close()
	<-sp.done
}
