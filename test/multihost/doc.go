// Package multihost holds the multi-host tests of whole features on hosts
// made of network namespaces (test/hosts): run by `make multihost`, as root,
// under the machine-wide e2e lock, with the binary from $SCALEPRESS_BIN.
package multihost
