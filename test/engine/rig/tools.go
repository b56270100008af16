//go:build tools

// Package rig pins the commands the engine conformance suite builds.
package rig

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
