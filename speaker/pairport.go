package speaker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
)

// maxPairPortSteps is how many ports above the default's a speaker tries
// when the default pairing port is taken (4102-4110 for :4101), before it
// takes any free port: a firewall can open a small range for a few zones
// on one box.
const maxPairPortSteps = 9

// listenPairing opens the info/pairing endpoint's listener on addr. When
// addr is the built-in default (isDefault) and its port is taken — another
// roomcastd on this box, a second zone — it takes the next free port (up
// to maxPairPortSteps above), else any free port, and logs which. A port
// the user chose that is taken is an error. The port it got is the one
// advertised over mDNS.
func listenPairing(addr string, isDefault bool, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil || !isDefault || !errors.Is(err, syscall.EADDRINUSE) {
		if err != nil {
			return nil, fmt.Errorf("--pair-listen: %w", err)
		}
		return ln, nil
	}
	host, portText, serr := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portText)
	if serr != nil || perr != nil {
		return nil, fmt.Errorf("--pair-listen: %w", err)
	}
	for step := 1; step <= maxPairPortSteps+1; step++ {
		try := net.JoinHostPort(host, strconv.Itoa(port+step))
		if step > maxPairPortSteps || port+step > 65535 {
			try = net.JoinHostPort(host, "0")
		}
		ln, lerr := net.Listen("tcp", try)
		if lerr == nil {
			log.Info("the default pairing port is taken (another roomcastd on this box?): using another",
				"taken", addr, "listen", ln.Addr().String())
			return ln, nil
		}
		if !errors.Is(lerr, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("--pair-listen %s: %w", try, lerr)
		}
	}
	return nil, fmt.Errorf("--pair-listen: %w", err)
}
