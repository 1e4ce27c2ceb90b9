package main

import "nimbus/internal/cli"

// The `nimbus network` verbs: an az-shaped client of the ARM API (internal/cli).
func init() { subcommands = append(subcommands, cli.NewNetworkCmd) }
