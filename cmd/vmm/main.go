// Command vmm runs KVM virtual machines: `vmm run -kernel FILE …`,
// with QEMU's option names. Only the guest's console goes to stdout;
// diagnostics go to stderr.
package main

import (
	"fmt"
	"log/slog"
	"os"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == reaperArg {
		reap()
		return
	}
	setupLogging()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runVM(args[1:])
	case "soak":
		return soakCmd(args[1:])
	case "help", "-h", "-help", "--help":
		switch {
		case len(args) > 1 && args[1] == "run":
			fmt.Print(runHelp)
		case len(args) > 1 && args[1] == "soak":
			return soakCmd([]string{"-h"})
		case len(args) > 1:
			fmt.Fprintf(os.Stderr, "vmm help: unknown command %q (commands: run, soak, version)\n", args[1])
			return 2
		default:
			fmt.Print(usage)
		}
		return 0
	case "version", "-version", "--version":
		fmt.Println(version())
		return 0
	default:
		fmt.Fprintf(os.Stderr, "vmm: unknown command %q (try: vmm run -kernel FILE, or vmm help)\n", args[0])
		return 2
	}
}

func setupLogging() {
	level := slog.LevelWarn
	if s := os.Getenv("VMM_LOG"); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			fmt.Fprintf(os.Stderr, "vmm: VMM_LOG=%q: %v\n", s, err)
		}
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	slog.SetDefault(slog.New(h))
}
