//go:build tools

// Package tools pins h2spec as a dependency of this module, so go.mod and
// go.sum record every module its build uses.
package tools

import _ "github.com/summerwind/h2spec/cmd/h2spec"
