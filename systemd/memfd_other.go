//go:build !linux

package systemd

import (
	"errors"
	"net"
)

// sendViaMemfd is only implemented on Linux, the only platform with journald.
func sendViaMemfd(*net.UnixConn, *net.UnixAddr, []byte) error {
	return errors.New("journal: entry too large for a datagram")
}
