// Command pulumi-language-nodejs is a test-only Node.js language host for the engine
// conformance suite (test/engine). It exists because the Go module proxy refuses the module
// github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 (403 "This module version is
// not available" for every version and for the v3.259.0 commit), while the CLI module
// github.com/pulumi/pulumi/pkg/v3 and the SDK module github.com/pulumi/pulumi/sdk/v3 are served.
//
// It keeps the real host's contract for everything a `pulumi up` of this project uses, as read
// in pulumi/pulumi at tag pkg/v3.259.0, file sdk/nodejs/cmd/pulumi-language-nodejs/main.go:
//   - main: prints the gRPC port on stdout; the engine address is the first argument, and
//     Handshake may give it again (func main, func Handshake).
//   - GetRequiredPackages: every package.json under node_modules with `pulumi.resource: true`
//     names a resource plugin; name from `pulumi.name` or the package name without `@pulumi/`,
//     version from `pulumi.version` or the package version, prefixed with `v`
//     (getPackagesFromDir, getPackageInfo, getPluginName, getPluginVersion).
//   - Run: spawns `node [nodeargs] <require.resolve("@pulumi/pulumi/cmd/run")> --monitor ...
//     --engine ... --organization ... --project ... --root-directory ... --stack ... --pwd ...
//     [--dry-run] --parallel N <entry point> <args>` in the program directory with PULUMI_CONFIG
//     (keys rewritten to `<namespace>:config:<name>`), PULUMI_CONFIG_SECRET_KEYS and, when the
//     `typescript` runtime option is true (its default), PULUMI_NODEJS_TYPESCRIPT=true
//     (Run, execRuntime, constructArguments, constructConfig, constructConfigSecretKeys,
//     parseOptions). Exit code 32 means "already reported": Bail (execRuntime).
//
// What it leaves out: the real host puts a gRPC proxy of the resource monitor and a pair of
// pipes for synchronous invokes between the engine and Node (Run, createAndServePipes); this
// project makes no synchronous invokes, so Node talks to the engine's monitor directly, as the
// host did before that proxy existed. Dependency installation, project templates, code
// generation, policy packs, debugging and Node.js plugins (RunPlugin) are not implemented: the
// suite installs every plugin as an executable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

func main() {
	args := []string{}
	for _, a := range os.Args[1:] {
		if a == "--version" || a == "-version" {
			fmt.Println(version.Version)
			return
		}
		if strings.HasPrefix(a, "-") {
			continue // -tracing, -runtime, -root: not used by the suite
		}
		args = append(args, a)
	}
	host := &langHost{}
	if len(args) > 0 {
		host.engineAddress = args[0]
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host RPC server: %w", err))
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

type langHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
}

func (h *langHost) Handshake(ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.EngineAddress
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *langHost) GetPluginInfo(ctx context.Context, _ *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *langHost) Cancel(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

type packageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Pulumi  struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

// packagesIn walks dir like the real host's getPackagesFromDir: package.json files below a
// node_modules folder, following symbolic links, each real path once.
func packagesIn(dir string, inNodeModules bool, seen map[string]bool, out *[]*pulumirpc.PackageDependency) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil || seen[real] {
		return
	}
	seen[real] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() {
			packagesIn(p, inNodeModules || filepath.Base(dir) == "node_modules", seen, out)
			continue
		}
		if !inNodeModules || e.Name() != "package.json" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var info packageJSON
		if json.Unmarshal(b, &info) != nil || !info.Pulumi.Resource {
			continue
		}
		name := info.Pulumi.Name
		if name == "" {
			name = strings.TrimPrefix(strings.TrimPrefix(info.Name, "@pulumi/"), "@")
		}
		v := info.Pulumi.Version
		if v == "" {
			v = info.Version
		}
		if !strings.HasPrefix(v, "v") {
			v = "v" + v
		}
		*out = append(*out, &pulumirpc.PackageDependency{
			Name: name, Kind: "resource", Version: v, Server: info.Pulumi.Server,
		})
	}
}

func (h *langHost) GetRequiredPackages(ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	var pkgs []*pulumirpc.PackageDependency
	packagesIn(req.Info.ProgramDirectory, false, map[string]bool{}, &pkgs)
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

func (h *langHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	return nil // the suite runs against the project's installed node_modules
}

func (h *langHost) GetProgramDependencies(ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *langHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	return &pulumirpc.AboutResponse{Executable: "node"}, nil
}

func (h *langHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "could not find node on the $PATH: " + err.Error()}, nil
	}
	progDir := req.Info.ProgramDirectory
	runPath := os.Getenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH")
	if runPath == "" {
		runPath = "@pulumi/pulumi/cmd/run"
	}
	resolve := exec.CommandContext(ctx, nodeBin, "-e", "console.log(require.resolve(process.argv[1]))", runPath)
	resolve.Dir = progDir
	out, err := resolve.Output()
	if err != nil {
		return &pulumirpc.RunResponse{Error: "It looks like the Pulumi SDK has not been installed. " +
			"Have you run npm install or yarn install?"}, nil
	}
	runPath = strings.TrimSpace(string(out))

	opts := req.Info.Options.AsMap()
	typescript := true
	if ts, ok := opts["typescript"].(bool); ok {
		typescript = ts
	}
	var nodeArgs []string
	if na, ok := opts["nodeargs"].(string); ok && na != "" {
		nodeArgs = strings.Fields(na)
	}

	args := append(nodeArgs, runPath)
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("organization", req.GetOrganization())
	add("project", req.GetProject())
	add("root-directory", req.Info.RootDirectory)
	add("stack", req.GetStack())
	add("pwd", progDir)
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	args = append(args, req.Info.EntryPoint)
	args = append(args, req.GetArgs()...)

	cfg := map[string]string{}
	for k, v := range req.GetConfig() {
		pk, err := config.ParseKey(k)
		if err != nil {
			return &pulumirpc.RunResponse{Error: "failed to serialize configuration: " + err.Error()}, nil
		}
		cfg[pk.Namespace()+":config:"+pk.Name()] = v
	}
	cfgJSON, _ := json.Marshal(cfg)
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, _ := json.Marshal(secretKeys)

	env := append(os.Environ(), "PULUMI_CONFIG="+string(cfgJSON), "PULUMI_CONFIG_SECRET_KEYS="+string(secretJSON))
	if typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if p, ok := opts["tsconfig"].(string); ok && p != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+p)
	}

	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Dir = progDir
	cmd.Env = env
	cmd.Stdout = struct{ _w }{os.Stdout}
	cmd.Stderr = struct{ _w }{os.Stderr}
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == 32 {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err),
		}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// _w hides *os.File from exec so that it copies through a pipe (Node may change the blocking
// mode of a file descriptor it is handed; see runWithOutput in the real host).
type _w = interface{ Write([]byte) (int, error) }
