package main

import (
	"fmt"
	"runtime/debug"
)

// usage is what `vmm`, `vmm help` and an unknown command print.
const usage = `usage: vmm run -kernel FILE [options]   boot a VM (vmm run --help lists every option)
       vmm soak [options]                 chaos soak test of virtio-serial (vmm soak -h)
       vmm help [run|soak]                this text, or a command's
       vmm version                        the build
`

// runHelp is `vmm run --help` and `vmm help run`. The README's option
// table follows it (TestRunHelpMatchesREADME).
const runHelp = `usage: vmm run -kernel FILE [options]

Boots a Linux kernel (bzImage or PVH ELF) or the test guest on KVM. Options
take QEMU's names and syntax: -opt value, --opt value and -opt=value.
Only the guest's console goes to stdout; diagnostics go to stderr.

Options:
  -kernel FILE          bzImage (64-bit boot protocol) or PVH ELF; required
  -initrd FILE          initial ramdisk
  -append STRING        kernel command line
  -m SIZE               guest RAM: 512 (MiB), 512M, 2G, size=1G; default 256M
  -smp N[,sockets=1][,cores=N][,threads=1][,maxcpus=N]
                        vCPUs, default 1; the guest sees one socket of N cores
  -cpu host[,+feat|-feat|feat=on|off...]
                        the CPUID the guest sees, with QEMU's feature names
  -machine, -M [type=]q35|pc|microvm[,accel=kvm][,acpi=on|off]
                        q35, pc: PCI (the default); microvm: virtio-mmio, no PCI
  -accel kvm            KVM, the only accelerator (-enable-kvm also works)
  -name NAME            the VM's name (also guest=NAME), shown in log lines
  -pidfile FILE         write vmm's pid to FILE; removed at exit
  -daemonize            detach once the VM is up: the command returns 0 then (or
                        the error and status of a VM that did not come up); no
                        stdio chardevs, COM1 defaults to none; see -pidfile
  -action panic=exit-failure|shutdown|pause|none
                        what a guest panic (pvpanic) does: end vmm with status 1
                        (the default) or 0, hold the vCPUs, or only report it
  -serial BACKEND       COM1 (0x3f8, IRQ 4); one of
                          stdio, mon:stdio   this terminal (^C goes to the guest)
                          null, none         output discarded, no input
                          file:PATH, pipe:PATH, pty
                          unix:PATH[,server][,nowait]
                          tcp:HOST:PORT[,server][,nowait]
                          chardev:ID         a -chardev
                        default stdio; null if a -chardev stdio exists; none with -nodefaults
  -chardev BACKEND,id=ID[,PROPS]
                        a host character device (backends below)
  -device virtio-serial[-pci|-device][,id=ID][,max_ports=N]
                        a virtio-serial controller: -pci, -device (virtio-mmio), or
                        the bare name (PCI; virtio-mmio under -M microvm); several allowed
  -device virtserialport,chardev=ID[,bus=ID.0][,id=ID][,name=NAME][,nr=N][,disconnected=hold|drop]
  -device virtconsole,chardev=ID[,bus=ID.0][,id=ID][,name=NAME][,nr=N][,limit=BYTES]
                        a port on the controller whose id is ID (bus=ID.0; default the first)
  -device pvpanic[,ioport=0x505]
                        the ISA pvpanic device; always present
  -device pvpanic-pci   QEMU's PCI pvpanic (1b36:0011), for kernels without ACPI
  -qmp unix:PATH,server=on[,wait=on|off] | tcp:HOST:PORT,server=on[,wait=on|off]
                        a QMP monitor (QEMU's JSON control protocol) listening there
  -mon chardev=ID,mode=control
                        a QMP monitor on a -chardev socket (libvirt's form)
  -incoming file:PATH   restore the VM saved there by QMP migrate {"uri": "file:PATH"}
                        (the same -m, -smp, -M, -cpu and -device options; chardevs
                        are made again from this command line; -kernel not needed).
                        It resumes running if it was saved running, else paused
  -S                    start paused: the vCPUs wait for QMP cont (needs -qmp or -mon)
  -nodefaults           no default COM1 backend
  -nographic, -display none, -vga none, -no-reboot, -no-user-config, -enable-kvm
                        accepted as QEMU takes them: vmm has no display, and a
                        guest reset always ends the VM

Chardev backends (-chardev BACKEND,id=ID,PROPS):
  socket   path=PATH | host=HOST,port=PORT [,server=on|off][,wait=on|off]
           [,nodelay=on|off][,reconnect=SECONDS]
           a server serves one client at a time; wait=on (a server's default)
           waits for the first client at start-up; reconnect= is for clients
  pipe     path=PATH        PATH.in and PATH.out if both exist, else PATH
  pty                       prints "char device redirected to /dev/pts/N (label ID)"
  file     path=PATH[,append=on|off][,input-path=PATH]
  ringbuf  size=N           output kept in memory (a power of two; default 64K)
  stdio    [,signal=on|off][,mux=on|off]
           this terminal; signal=on (the default) lets ^C end vmm, signal=off
           passes it to the guest; the Ctrl-A keys are always on
  null                      output discarded, no input
  A bare property means =on; QEMU's nowait means wait=off.

Keys on a stdio console (QEMU's):
  Ctrl-A x         quit vmm (exit status 0)
  Ctrl-A h         list these keys
  Ctrl-A Ctrl-A    send Ctrl-A to the guest

Exit status:
  0       the guest powered off or reset (also Linux's reboot=t triple fault),
          or Ctrl-A x
  N       the guest wrote N to the isa-debug-exit port 0xf4
  1       the guest panicked (pvpanic; -action panic=exit-failure) or crashed
          (a triple fault with its IDT in place), the VM died
          (KVM_EXIT_INTERNAL_ERROR and the like), or a file or host resource
          failed (kernel, initrd, socket, memory), or -incoming's snapshot was
          refused (another format version, -m, -smp, machine or device set, a
          truncated or corrupt file); one line on stderr says which
  2       a bad option or property; one line on stderr says which
  128+N   vmm was ended by signal N (130: SIGINT, 143: SIGTERM)

Refused, with a line saying so: -snapshot, displays, other
accelerators, a second -serial, telnet/udp/vc/host-device backends, -smp with
more than one socket or thread, CPU and memory hotplug.

Environment: VMM_LOG=debug|info|warn|error sets the log level (default warn).
`

// buildVersion may be set at link time (-ldflags "-X main.buildVersion=…")
// where the build has no version control stamp (GOFLAGS=-buildvcs=false).
var buildVersion = ""

// version is `vmm version`: the version control stamp of the build.
func version() string {
	v := "vmm (development build)"
	if buildVersion != "" {
		v = "vmm " + buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	if rev != "" {
		v = fmt.Sprintf("vmm %.12s%s, committed %s", rev, dirty, at)
	}
	return v + ", " + bi.GoVersion
}
