package systemd

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sendViaMemfd passes an entry too large for one datagram the way journald
// expects: written to a memfd, sealed against modification, and sent as the
// only payload of an otherwise empty datagram (SCM_RIGHTS).
func sendViaMemfd(conn *net.UnixConn, addr *net.UnixAddr, entry []byte) error {
	fd, err := unix.MemfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("journal: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "journal-entry")
	defer f.Close()
	if _, err := f.Write(entry); err != nil {
		return fmt.Errorf("journal: write memfd: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("journal: seal memfd: %w", err)
	}
	if _, _, err := conn.WriteMsgUnix(nil, unix.UnixRights(int(f.Fd())), addr); err != nil {
		return fmt.Errorf("journal: send memfd: %w", err)
	}
	return nil
}
