// Package deptest holds no code: its test checks the import rules of the
// packages under internal/ (docs/architecture.md, "Rooms"), so that they
// hold without a reviewer.
package deptest
