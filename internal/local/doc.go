// Package local runs roles as child processes of the controller on this
// machine: the role-start sequence (write the spec, start the process under
// the supervisor, wait until it answers) written once, and the node group's
// Launcher built on it. A launcher for many machines (Nomad) sits beside it
// and implements the same nodegroup.Launcher.
package local
