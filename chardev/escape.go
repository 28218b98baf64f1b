package chardev

// Escape implements QEMU's Ctrl-A prefix on a stdio console:
// Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A h lists keys.
type Escape struct {
	armed  bool
	OnQuit func()
	OnHelp func()
}

const ctrlA = 0x01

// Filter rewrites input in place and returns what goes to the guest.
func (e *Escape) Filter(in []byte) []byte {
	out := in[:0]
	for _, b := range in {
		if !e.armed {
			if b == ctrlA {
				e.armed = true
				continue
			}
			out = append(out, b)
			continue
		}
		e.armed = false
		switch b {
		case 'x', 'X':
			if e.OnQuit != nil {
				e.OnQuit()
			}
		case 'h', 'H', '?':
			if e.OnHelp != nil {
				e.OnHelp()
			}
		case ctrlA:
			out = append(out, ctrlA)
		default:
			out = append(out, b) // unknown key: the key alone, as QEMU does
		}
	}
	return out
}

// EscapeHelp is printed for Ctrl-A h.
const EscapeHelp = "C-a h    print this help\r\nC-a x    exit vmm\r\nC-a C-a  send C-a\r\n"
