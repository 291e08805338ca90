package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/scalepress/scalepress/internal/api"
)

// apiClient is the control API of the environment in d.
func apiClient(d dirFlags) (*api.Client, error) {
	cfg, err := d.load()
	if err != nil {
		return nil, err
	}
	if controllerPID(d.layout()) == 0 {
		return nil, fmt.Errorf("no environment is running in %s (start it with `scalepress up --dir %s`)", d.layout().Dir, d.dir)
	}
	return api.NewClient("http://" + cfg.API.Addr), nil
}

// usageIfRefused turns an answer with one of codes (the request was wrong)
// into a usage error (exit 2) that says why; other errors stay as they are.
func usageIfRefused(err error, codes ...int) error {
	var he *api.HTTPError
	if errors.As(err, &he) && slices.Contains(codes, he.Code) {
		return errUsagef("%s", he.Body)
	}
	return err
}
