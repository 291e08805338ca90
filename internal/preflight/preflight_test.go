package preflight

import (
	"net"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/config"
)

func TestCheckUDPPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	err = checkUDPPort("dns.addr", pc.LocalAddr().String())
	if err == nil || !strings.Contains(err.Error(), "dns.addr "+pc.LocalAddr().String()+" (UDP) is already in use") {
		t.Errorf("taken port: %v", err)
	}
	if got := dnsUDPAddrs(config.Default()); got != nil {
		t.Errorf("dns off: UDP addresses %v", got)
	}
}
