// Command vmm runs KVM virtual machines: `vmm run -kernel FILE …`,
// with QEMU's option names. Only the guest's console goes to stdout;
// diagnostics go to stderr.
package main

import (
	"fmt"
	"log/slog"
	"os"
)

const usage = `usage: vmm run -kernel FILE [options]
       vmm soak [--ports N] [--duration D] [--schedule FILE] [--seed N] [--out DIR]  (chaos soak test; vmm soak -h)

options (QEMU's names and syntax):
  -kernel FILE        bzImage or PVH ELF kernel (required)
  -initrd FILE        initial ramdisk
  -append STRING      kernel command line
  -m SIZE             guest memory: 512 (MiB), 512M, 2G; default 256M
  -smp N              number of vCPUs; default 1
  -cpu host[,+feat|-feat|feat=on|off...]
                      CPUID the guest sees (QEMU feature names)
  -serial stdio|null|file:PATH
                      where COM1 goes; default stdio (Ctrl-A x quits)
  -machine acpi=on|off  ACPI tables (default on; the MP table is always there)
  -chardev BACKEND,id=ID[,...]  socket, pipe, pty, file, ringbuf, stdio, null
  -device virtio-serial[-pci|-device][,max_ports=N]   (virtio-serial is PCI)
  -device virtserialport,chardev=ID[,name=N][,nr=N][,disconnected=hold|drop]
  -device virtconsole,chardev=ID[,name=N][,nr=N][,limit=BYTES]

environment: VMM_LOG=debug|info|warn|error sets the log level (default warn).
`

func main() {
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
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "vmm: unknown command %q (try: vmm run -kernel FILE)\n", args[0])
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
