package chardev

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Terminal is a tty put in raw mode, restored by Restore.
type Terminal struct {
	fd    int
	saved unix.Termios
}

// IsTerminal reports whether fd is a tty.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// MakeRaw puts the tty on fd in raw mode, as QEMU's stdio chardev does:
// no echo, no line editing, no signals from ^C (they go to the guest),
// but output processing stays on so the guest's "\n" starts a new line.
func MakeRaw(fd int) (*Terminal, error) { return makeRaw(fd, false) }

// makeRaw is MakeRaw; keepSignals leaves ^C and ^Z to the terminal
// (QEMU's signal=on).
func makeRaw(fd int, keepSignals bool) (*Terminal, error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("stdin is not a terminal: %w", err)
	}
	term := &Terminal{fd: fd, saved: *t}
	raw := *t
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.IEXTEN
	if !keepSignals {
		raw.Lflag &^= unix.ISIG
	}
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("set terminal raw mode: %w", err)
	}
	return term, nil
}

// Restore puts the terminal back as it was.
func (t *Terminal) Restore() error {
	return unix.IoctlSetTermios(t.fd, unix.TCSETS, &t.saved)
}
