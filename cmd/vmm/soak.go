package main

import (
	"flag"
	"fmt"
	"os"

	"vmm/soak"
)

const soakUsage = `usage: vmm soak [--ports 8] [--duration 60s] [--schedule FILE.json] [--seed N]
                [--out DIR] [--guest FILE] [--vmm FILE] [--heartbeat-bound 1s]
                [--fairness-ratio R] [--rss-slack KiB] [--fd-slack N]

Runs vmm with the test guest streaming a checked pattern both ways on every
port while a chaos schedule disturbs the host peers; writes report.json,
summary.txt and throughput.svg to --out and exits 1 on any violation.
See soak/README.md.
`

// soakCmd is `vmm soak`.
func soakCmd(args []string) int {
	cfg := soak.DefaultConfig()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, soakUsage) }
	fs.IntVar(&cfg.Ports, "ports", cfg.Ports, "ports (1..31)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to stream")
	schedule := fs.String("schedule", "", "chaos schedule (JSON); default: generated from --seed")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generated schedule")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "report folder")
	fs.StringVar(&cfg.Guest, "guest", cfg.Guest, "test guest ELF")
	fs.StringVar(&cfg.VMM, "vmm", "", "vmm binary to run (default: this one)")
	fs.DurationVar(&cfg.HeartbeatBound, "heartbeat-bound", cfg.HeartbeatBound, "largest allowed gap between guest heartbeats")
	fs.Float64Var(&cfg.Fairness.Ratio, "fairness-ratio", cfg.Fairness.Ratio, "largest allowed slowdown of an unblocked port while others are blocked")
	fs.Int64Var(&cfg.Flatness.RSSSlackKiB, "rss-slack", cfg.Flatness.RSSSlackKiB, "allowed vmm RSS growth after warm-up, KiB")
	fs.IntVar(&cfg.Flatness.FDSlack, "fd-slack", cfg.Flatness.FDSlack, "allowed vmm fd growth after warm-up")
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			// Asked for: the usage is the answer, on stdout.
			fs.SetOutput(os.Stdout)
			fmt.Print(soakUsage + "\nOptions:\n")
			fs.PrintDefaults()
			return 0
		}
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vmm soak: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.Duration <= 0 || cfg.HeartbeatBound <= 0 || cfg.Fairness.Ratio < 1 {
		fmt.Fprintln(os.Stderr, "vmm soak: --duration and --heartbeat-bound must be > 0, --fairness-ratio ≥ 1")
		return 2
	}
	ports, err := soak.Layout(cfg.Ports)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmm soak:", err)
		return 2
	}
	if *schedule != "" {
		s, err := soak.LoadSchedule(*schedule, ports)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmm soak:", err)
			return 2
		}
		cfg.Schedule = s
	}
	if cfg.VMM == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmm soak: cannot find this binary:", err)
			return 1
		}
		cfg.VMM = exe
	}
	if _, err := os.Stat(cfg.Guest); err != nil {
		fmt.Fprintf(os.Stderr, "vmm soak: test guest: %v (make guest builds it)\n", err)
		return 1
	}
	cfg.Progress = os.Stderr
	rep, err := soak.Run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmm soak:", err)
		return 1
	}
	fmt.Print(rep.Summary())
	fmt.Printf("report: %s/{report.json,summary.txt,throughput.svg,events.log,guest.log,vmm.stderr}\n", cfg.Out)
	if len(rep.Violations) > 0 {
		return 1
	}
	return 0
}
