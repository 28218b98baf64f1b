package kvm

import "unsafe"

// getMSRIndexList asks for at most room indices; on E2BIG need is the
// count the kernel wants room for.
func getMSRIndexList(fd, room int) (idx []uint32, need int, err error) {
	buf := make([]uint32, 1+room)
	buf[0] = uint32(room)
	_, err = ioctl(fd, reqGetMSRIndexList, uintptr(unsafe.Pointer(&buf[0])))
	n := int(buf[0])
	if err != nil {
		return nil, n, err
	}
	if n > room {
		n = room
	}
	return append([]uint32(nil), buf[1:1+n]...), n, nil
}
