//go:build tools

// Package tools pins Nomad as a dependency of this module, so go.mod and
// go.sum record every module the Nomad build uses.
package tools

import _ "github.com/hashicorp/nomad"
