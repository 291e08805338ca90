package nodegroup

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// HTTPProber asks a node agent over HTTP: api.NodePathHealth (200 when PHP
// answers) and api.NodePathStatus (its api.NodeReport).
type HTTPProber struct {
	Client *http.Client
}

var _ Prober = HTTPProber{}

// NewHTTPProber returns a prober whose requests never follow redirects.
func NewHTTPProber() HTTPProber {
	return HTTPProber{Client: &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Ready implements Prober.
func (p HTTPProber) Ready(ctx context.Context, n Node) error {
	resp, err := p.get(ctx, n, api.NodePathHealth)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Report implements Prober.
func (p HTTPProber) Report(ctx context.Context, n Node) (Report, error) {
	var st api.NodeReport
	resp, err := p.get(ctx, n, api.NodePathStatus)
	if err != nil {
		return Report{}, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Report{}, fmt.Errorf("status of %s: %w", n.ID, err)
	}
	return Report{InFlight: st.InFlight, Utilization: st.Utilization, Waiting: st.Waiting, PHPDone: st.PHPDone, PHPOK: st.PHPOK, FilesReady: st.FilesReady, FilesSeq: st.FilesSeq,
		FilesQuarantined: st.FilesQuarantined, FilesQuarantineLast: st.FilesQuarantineLast}, nil
}

// Warm implements Prober.
func (p HTTPProber) Warm(ctx context.Context, n Node, host string, paths []string) {
	client := *p.Client
	client.Timeout = 10 * time.Second // a cold PHP page
	for _, path := range paths {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Addr+path, nil)
		if err != nil {
			continue
		}
		req.Host = host
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

func (p HTTPProber) get(ctx context.Context, n Node, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp, nil
}
