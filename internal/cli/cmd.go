package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Commands returns the top-level client verbs (group, network, vmss), for
// cmd/nimbus and for programs that run verbs in-process (the demo):
//
//	root.AddCommand(cli.Commands()...)
func Commands() []*cobra.Command {
	return []*cobra.Command{NewGroupCmd(), NewNetworkCmd(), NewVMSSCmd()}
}

// Run executes one client command line (args as after "nimbus", e.g.
// "network", "lb", "list", "-g", "rg") with its output on stdout and
// returns the command's error (an *APIError or *UsageError carries its exit
// code). The demo and tests use it to run verbs in-process.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{Use: "nimbus", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands()...)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// globals are az's global arguments plus how to reach nimbus.
type globals struct {
	output, query            string
	subscription, endpoint   string
	dataDir                  string
	debug, verbose, onlyShow bool
	client                   *Client
	clientErr                error
	clientBuilt              bool
}

// addGlobals registers the global flags as persistent flags of a top-level
// verb, and makes flag errors usage errors (exit 2).
func addGlobals(cmd *cobra.Command) *globals {
	g := &globals{}
	f := cmd.PersistentFlags()
	f.StringVarP(&g.output, "output", "o", FormatJSON, "output format: json, jsonc, table, tsv, none")
	f.StringVar(&g.query, "query", "", "JMESPath query string (http://jmespath.org)")
	f.StringVar(&g.subscription, "subscription", "", "subscription ID (default: the server's, or $"+EnvSubscription+")")
	f.StringVar(&g.endpoint, "endpoint", "", "ARM endpoint URL (default $"+EnvEndpoint+", then DATA_DIR/endpoint.json)")
	f.StringVar(&g.dataDir, "data-dir", "", "data directory of a local nimbus server (default $NIMBUS_DATA_DIR or ~/.local/share/nimbus)")
	f.BoolVar(&g.debug, "debug", false, "log every request to stderr")
	f.BoolVar(&g.verbose, "verbose", false, "accepted for az compatibility")
	f.BoolVar(&g.onlyShow, "only-show-errors", false, "accepted for az compatibility")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Msg: err.Error()} })
	return g
}

// env is what a verb's body gets: its context, command, flags and lazily a
// client and printer.
type env struct {
	ctx context.Context
	cmd *cobra.Command
	g   *globals
}

// Client returns the ARM client, built on first use from the flags,
// environment and data directory.
func (e *env) Client() (*Client, error) {
	g := e.g
	if !g.clientBuilt {
		g.clientBuilt = true
		g.client, g.clientErr = NewClient(e.ctx, Config{DataDir: g.dataDir, Endpoint: g.endpoint, Subscription: g.subscription})
		if g.client != nil && g.debug {
			g.client.Debug = e.cmd.ErrOrStderr()
		}
	}
	return g.client, g.clientErr
}

// Print writes a result with the global --output and --query.
func (e *env) Print(v any, table TableFunc) error {
	p := &Printer{Out: e.cmd.OutOrStdout(), Format: e.g.output, Query: e.g.query}
	return p.Print(v, table)
}

// PrintResource prints a resource (or list) as az shows SDK models: with
// "properties" flattened.
func (e *env) PrintResource(v any, table TableFunc) error {
	return e.Print(Flatten(v).Value, table)
}

// verb wraps a verb body as a cobra RunE: it validates --output/--query
// first (usage errors), then runs fn.
func verb(g *globals, fn func(e *env) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		p := &Printer{Format: g.output, Query: g.query}
		if err := p.Validate(); err != nil {
			return err
		}
		if len(args) > 0 {
			return usagef("unrecognized arguments: %s", strings.Join(args, " "))
		}
		return fn(&env{ctx: cmd.Context(), cmd: cmd, g: g})
	}
}

// group returns a command that only holds subcommands.
func group(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("'%s' is misspelled or not recognized by the system.", args[0])
		}
		return cmd.Help()
	}}
}

// leaf returns a verb command accepting no positional arguments.
func leaf(use, short string, g *globals, fn func(e *env) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: verb(g, fn)}
}

// need returns az's usage error when any of the flags is unset.
func need(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil {
			continue
		}
		if f.Changed && f.Value.String() != "" {
			continue
		}
		s := "--" + n
		if f.Shorthand != "" {
			s += "/-" + f.Shorthand
		}
		missing = append(missing, s)
	}
	if len(missing) > 0 {
		return usagef("the following arguments are required: %s", strings.Join(missing, ", "))
	}
	return nil
}

// changed reports whether flag name was given.
func changed(cmd *cobra.Command, name string) bool {
	f := cmd.Flags().Lookup(name)
	return f != nil && f.Changed
}

// parseBool parses az's three-state flag values.
func parseBool(flag, s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "1", "on", "enabled", "y", "t":
		return true, nil
	case "false", "no", "0", "off", "disabled", "n", "f":
		return false, nil
	}
	return false, usagef("argument --%s: invalid value '%s' (use true or false)", flag, s)
}

// choice returns the canonical spelling of v among choices
// (case-insensitive), or a usage error naming flag.
func choice(flag, v string, choices ...string) (string, error) {
	for _, c := range choices {
		if strings.EqualFold(c, v) {
			return c, nil
		}
	}
	q := make([]string, len(choices))
	for i, c := range choices {
		q[i] = "'" + c + "'"
	}
	return "", usagef("argument --%s: invalid choice: '%s' (choose from %s)", flag, v, strings.Join(q, ", "))
}

// genericArgs collects az's generic-update arguments in order. Each of
// --set, --add, --remove starts an operation; bare words after it (az's
// nargs='+') are appended to it (see finalize).
type genericArgs struct {
	ops         []UpdateOp
	forceString bool
}

// multiValue is a flag that takes several words, as az's nargs='+'/'*'
// arguments do: Extend receives the bare words that follow it.
type multiValue interface {
	pflag.Value
	Extend(word string)
}

type genericValue struct {
	g    *genericArgs
	kind string
}

func (v *genericValue) String() string { return "" }
func (v *genericValue) Type() string   { return "stringArray" }
func (v *genericValue) Set(s string) error {
	v.g.ops = append(v.g.ops, UpdateOp{Kind: v.kind, Args: []string{s}})
	return nil
}
func (v *genericValue) Extend(s string) {
	last := &v.g.ops[len(v.g.ops)-1]
	last.Args = append(last.Args, s)
}

// words is a list flag taking space-separated words (--tags a=b c=d,
// --instance-ids 0 1 2).
type words struct{ vals *[]string }

func (w words) String() string { return strings.Join(*w.vals, " ") }
func (w words) Type() string   { return "strings" }
func (w words) Set(s string) error {
	*w.vals = append(*w.vals, strings.Fields(s)...)
	return nil
}
func (w words) Extend(s string) { *w.vals = append(*w.vals, strings.Fields(s)...) }

// wordsVar registers a multi-word flag.
func wordsVar(cmd *cobra.Command, p *[]string, name, short, usage string) {
	cmd.Flags().VarP(words{p}, name, short, usage)
}

// addGeneric registers --set/--add/--remove/--force-string on cmd.
func addGeneric(cmd *cobra.Command) *genericArgs {
	ga := &genericArgs{}
	f := cmd.Flags()
	f.Var(&genericValue{ga, "set"}, "set", "update an object by specifying a property path and value to set, e.g. properties.name=value")
	f.Var(&genericValue{ga, "add"}, "add", "add an object to a list of objects by specifying a path and key value pairs, e.g. list key=value")
	f.Var(&genericValue{ga, "remove"}, "remove", "remove a property or an element from a list, e.g. list 0 or property")
	f.BoolVar(&ga.forceString, "force-string", false, "with --set/--add, keep string literals instead of parsing JSON")
	return ga
}

// tracked wraps a verb's flag so the collector knows which flag was set last.
type tracked struct {
	pflag.Value
	t *tracker
}

func (v *tracked) Set(s string) error {
	v.t.last = v.Value
	return v.Value.Set(s)
}

// IsBoolFlag keeps boolean flags usable without a value.
func (v *tracked) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

type tracker struct{ last pflag.Value }

// finalize prepares every verb under root for az's multi-word arguments:
// flag parsing stops at the first bare word, which goes to the flag set
// just before it if that flag takes several words (else it is a usage
// error), and parsing resumes after it.
func finalize(root *cobra.Command) *cobra.Command {
	for _, c := range root.Commands() {
		finalize(c)
	}
	if root.RunE == nil || root.HasSubCommands() {
		return root
	}
	t := &tracker{}
	root.Flags().VisitAll(func(f *pflag.Flag) { f.Value = &tracked{Value: f.Value, t: t} })
	root.Flags().SetInterspersed(false)
	root.Args = cobra.ArbitraryArgs
	run := root.RunE
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if err := t.collect(cmd, args); err != nil {
			return err
		}
		return run(cmd, nil)
	}
	return root
}

// collect hands bare words to the multi-word flag before them and parses
// the flags that follow, until args are used up.
func (t *tracker) collect(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	for len(args) > 0 {
		i := 0
		for i < len(args) && !(strings.HasPrefix(args[i], "-") && len(args[i]) > 1 && !isNumberWord(args[i])) {
			i++
		}
		if i > 0 {
			mv, ok := t.last.(multiValue)
			if !ok {
				return usagef("unrecognized arguments: %s", strings.Join(args[:i], " "))
			}
			for _, w := range args[:i] {
				mv.Extend(w)
			}
		}
		rest := args[i:]
		if len(rest) == 0 {
			break
		}
		if err := fs.Parse(rest); err != nil {
			return &UsageError{Msg: err.Error()}
		}
		args = fs.Args()
	}
	return nil
}

func isNumberWord(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// confirm asks az's "Are you sure" question unless yes; without a terminal
// it fails as az does.
func confirm(e *env, yes bool) error {
	if yes {
		return nil
	}
	if !isTerminal(os.Stdin) {
		return errors.New("Unable to prompt for confirmation as no tty available. Use --yes.")
	}
	fmt.Fprint(e.cmd.ErrOrStderr(), "Are you sure you want to perform this operation? (y/n): ")
	var ans string
	if _, err := fmt.Fscanln(os.Stdin, &ans); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
		return errors.New("Operation cancelled.")
	}
	return nil
}

// addNoWait registers --no-wait.
func addNoWait(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVar(p, "no-wait", false, "do not wait for the long-running operation to finish")
}

// addRGName registers -g/--resource-group and -n/--name.
func addRGName(cmd *cobra.Command, rg, name *string, nameHelp string) {
	cmd.Flags().StringVarP(rg, "resource-group", "g", "", "name of resource group")
	cmd.Flags().StringVarP(name, "name", "n", "", nameHelp)
}

var (
	_ multiValue = (*genericValue)(nil)
	_ multiValue = words{}
)
