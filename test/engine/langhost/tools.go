//go:build tools

// Package langhost pins the real Node.js language host that the engine conformance suite builds.
package langhost

import (
	_ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
)
