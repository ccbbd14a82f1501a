// Command tpp runs the bunq PSD2 third-party provider and its tools: the
// API server, the one-command demo, TPP registration with bunq, fintech client
// management, master-key rotation, test certificates and the emulated bunq
// sandbox.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/gin-gonic/gin"
)

func main() {
	// gin's mode is process-wide (it only silences gin's route listing and
	// warnings on stdout); it is set here, once, and nowhere else. Test
	// binaries need nothing: gin picks its test mode by itself there.
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "tpp:", err)
		}
		os.Exit(1)
	}
}

// errUsage reports a command line that could not be parsed; the usage text
// has been printed already.
var errUsage = errors.New("usage")

// ownUsage reports a command's own usage error, from the package that
// parses its flags, as errUsage.
func ownUsage(err, pkgUsage error) error {
	if errors.Is(err, pkgUsage) {
		return errUsage
	}
	return err
}

// command is one subcommand of tpp.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands. It is built per call so that no package
// state is shared between runs (tests call run many times in one process).
func commands() map[string]command {
	return map[string]command{
		"bench":    {"load-test the TPP against the emulated bank and print figures", runBench},
		"certs":    {"generate eIDAS-style test certificates", runCerts},
		"clients":  {"manage fintech API clients", runClients},
		"demo":     {"run the whole product on embedded defaults with a demo fintech app", runDemo},
		"sandbox":  {"run the emulated bunq sandbox", runSandbox},
		"rekey":    {"re-seal the database's secrets under the current master key", runRekey},
		"migrate":  {"copy a SQLite database into PostgreSQL (for N replicas)", runMigrate},
		"register": {"register this TPP with bunq (installation, PSD2 credential, OAuth client)", runRegister},
		"serve":    {"run the TPP: fintech API, consent pages, bank callbacks", runServe},
	}
}

// run is the whole program: it parses args, runs one subcommand and returns
// its error. main only adds signals and the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "version" {
		fmt.Fprintln(stdout, "tpp", version())
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tpp: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return errUsage
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "Usage: tpp <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'tpp <command> -h' for the flags of a command, 'tpp --version' for the build.")
}
