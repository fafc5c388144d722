package main

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/fieldsync/fieldsync/api"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3"); otherwise
// the module version from the build info is shown.
var version = ""

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(e.stdout, "fsctl %s\n", v)
	return nil
}

// runHealth is fsctl health [--server URL]: GET /healthz and GET /readyz.
func runHealth(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "health", "[--server URL]")
	server := fs.String("server", "", "the server's URL (default: the one of the last login)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *server == "" {
		cfg, err := e.loadConfig()
		if err != nil {
			return err
		}
		if cfg.Server == "" {
			return fs.usageErrorf("no server: give --server URL or log in first")
		}
		*server = cfg.Server
	}
	c, err := api.NewClient(*server, api.WithHTTPClient(e.client()), api.WithUserAgent(userAgent()))
	if err != nil {
		return err
	}
	if err := c.Health(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: up\n", *server)
	if err := c.Ready(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ready (the store answers)\n", *server)
	return nil
}

func userAgent() string {
	v := version
	if v == "" {
		v = "devel"
	}
	return "fsctl/" + v
}
