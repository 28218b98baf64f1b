package qmp

import "fmt"

// Error classes (QEMU's qapi/error.json). QEMU puts nearly everything in
// GenericError; the others exist for clients that test for them.
const (
	GenericError    = "GenericError"
	CommandNotFound = "CommandNotFound"
	DeviceNotActive = "DeviceNotActive"
	DeviceNotFound  = "DeviceNotFound"
	KVMMissingCap   = "KVMMissingCap"
)

// Error is a QMP error reply: {"error": {"class": …, "desc": …}}. A
// command handler returns one to choose the class; any other error is
// sent as a GenericError with its text.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return e.Class + ": " + e.Desc }

// Errorf builds an Error of the given class.
func Errorf(class, format string, args ...any) *Error {
	return &Error{Class: class, Desc: fmt.Sprintf(format, args...)}
}
