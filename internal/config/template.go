package config

import _ "embed"

// Template is the commented default configuration `scalepress init` writes.
// It parses to exactly Default() (golden test).
//
//go:embed default.yaml
var Template []byte
