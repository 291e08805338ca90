package supervise

import (
	"syscall"
	"unsafe"
)

// pPID is idtype_t P_PID for waitid(2); the syscall package does not export it.
const pPID = 1

// waitExited blocks until the child pid has exited, without reaping it
// (WNOWAIT). Until the zombie is reaped its pid, and with it the process
// group id, cannot be reused, so the group may still be signalled safely.
func waitExited(pid int) error {
	var info [128]byte // siginfo_t; contents unused
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return errno
		}
	}
}

// killGroup signals the process group led by pgid.
func killGroup(pgid int, sig syscall.Signal) error {
	return syscall.Kill(-pgid, sig)
}
