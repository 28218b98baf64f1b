package virtioserial

import (
	"encoding/binary"
	"fmt"
)

// Control events (virtio 1.2 §5.3.6.2, struct virtio_console_control).
const (
	eventDeviceReady = 0
	eventPortAdd     = 1 // VIRTIO_CONSOLE_DEVICE_ADD
	eventPortRemove  = 2 // VIRTIO_CONSOLE_DEVICE_REMOVE
	eventPortReady   = 3
	eventConsolePort = 4
	eventResize      = 5
	eventPortOpen    = 6
	eventPortName    = 7
)

// controlHeaderSize is {le32 id, le16 event, le16 value}.
const controlHeaderSize = 8

// controlMsg is one control message, either direction. Payload is the
// port name for PORT_NAME, and the console size for RESIZE.
type controlMsg struct {
	id      uint32
	event   uint16
	value   uint16
	payload []byte
}

func (m controlMsg) String() string {
	names := [...]string{"DEVICE_READY", "PORT_ADD", "PORT_REMOVE", "PORT_READY",
		"CONSOLE_PORT", "RESIZE", "PORT_OPEN", "PORT_NAME"}
	name := fmt.Sprintf("event %d", m.event)
	if int(m.event) < len(names) {
		name = names[m.event]
	}
	return fmt.Sprintf("%s(port %d, value %d)", name, m.id, m.value)
}

// encode lays the message out as the guest reads it.
func (m controlMsg) encode() []byte {
	b := make([]byte, controlHeaderSize+len(m.payload))
	binary.LittleEndian.PutUint32(b[0:], m.id)
	binary.LittleEndian.PutUint16(b[4:], m.event)
	binary.LittleEndian.PutUint16(b[6:], m.value)
	copy(b[controlHeaderSize:], m.payload)
	return b
}

// decodeControl parses a message the guest sent. Extra bytes after the
// header are ignored (the guest sends none), a short buffer is an error.
func decodeControl(b []byte) (controlMsg, error) {
	if len(b) < controlHeaderSize {
		return controlMsg{}, fmt.Errorf("control message of %d bytes, want at least %d", len(b), controlHeaderSize)
	}
	return controlMsg{
		id:    binary.LittleEndian.Uint32(b[0:]),
		event: binary.LittleEndian.Uint16(b[4:]),
		value: binary.LittleEndian.Uint16(b[6:]),
	}, nil
}
