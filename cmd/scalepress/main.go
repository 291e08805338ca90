// Command scalepress runs a scalable WordPress environment. See README.md.
package main

import "github.com/scalepress/scalepress/internal/cli"

func main() { cli.Main() }
