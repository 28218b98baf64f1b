// Command rig runs one command in the nested-KVM rig (package
// vmm/tests/nested): an outer Debian kernel under QEMU's TCG with
// emulated SVM, whose /dev/kvm runs stock guest kernels. The host's root
// is visible there read-only at its usual paths, /tmp is the outer
// machine's own, and the command's output arrives on stdout.
//
//	go run ./tests/nested/rig [-build build] [-timeout 20m] -- COMMAND [ARG...]
//	go run ./tests/nested/rig -prepare
//	go run ./tests/nested/rig -i -- build/vmm run … -append console=ttyS0   (a guest's shell)
//
// Its exit status is the command's; 125 when the rig itself failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"vmm/tests/nested"
)

func main() {
	build := flag.String("build", "build", "the `folder` make kernels filled (debian/ with the outer kernel)")
	timeout := flag.Duration("timeout", 20*time.Minute, "end the outer machine after this `long`")
	cpus := flag.Int("smp", 2, "the outer machine's vCPUs")
	mem := flag.Int("m", 4096, "the outer machine's RAM in `MiB`")
	prepare := flag.Bool("prepare", false, "only build the outer machine's initramfs (cached), run nothing")
	interactive := flag.Bool("i", false, "give the command this terminal as its input (a guest's shell by hand)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: rig [flags] -- COMMAND [ARG...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 && !*prepare {
		flag.Usage()
		os.Exit(2)
	}
	r, err := nested.Prepare(*build)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rig: %v\n", err)
		os.Exit(125)
	}
	if *prepare {
		fmt.Fprintf(os.Stderr, "rig: outer kernel %s, initramfs %s\n", r.Kernel, r.Initrd)
		return
	}
	wd, _ := os.Getwd()
	c := nested.Command{
		Args: flag.Args(), Dir: wd, Env: passEnv(),
		CPUs: *cpus, MemMiB: *mem, Timeout: *timeout, Console: os.Stdout,
	}
	if *interactive {
		c.Stdin = os.Stdin
	}
	status, err := r.Run(context.Background(), c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rig: %v\n", err)
		os.Exit(125)
	}
	os.Exit(status)
}

// passEnv carries vmm's own settings (VMM_*) and CI into the rig.
func passEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if len(e) > 4 && e[:4] == "VMM_" || len(e) > 3 && e[:3] == "CI=" {
			env = append(env, e)
		}
	}
	return env
}
