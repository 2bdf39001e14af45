package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/storage"
)

const adminUsage = `Usage:
  vss-server admin usage [--user USER] [--json] [database flags]
      Report what each user stores (or USER only): bytes of keys and values, keys
      (global versions included) and store ids, counted from the stored entries.
      --json prints one line: an array of {"user","bytes","keys","stores"}.
  vss-server admin delete-user USER [--yes] [database flags]
      Delete every entry of USER in all of its stores. Without --yes, show what would
      be deleted and ask for confirmation.

The store is found as the server finds it; it must exist: the admin commands never
create one, and say where they looked when there is none.

Exit codes: 0 success, 1 the command failed (no store there, not confirmed, a database
error), 2 usage error.

Flags:
`

// runAdmin runs `vss-server admin ...` and returns the process exit code: 0 on success,
// 1 when the command failed, 2 for a usage error.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	f := newAdminFlags("admin", getenv, stderr)
	user := f.fs.String("user", "", "usage: report only this `user`")
	asJSON := f.fs.Bool("json", false, "usage: print JSON instead of a table")
	yes := f.fs.Bool("yes", false, "delete-user: delete without asking for confirmation")
	help := func(w io.Writer) {
		fmt.Fprint(w, adminUsage)
		f.fs.SetOutput(w)
		f.fs.PrintDefaults()
		f.fs.SetOutput(io.Discard)
	}
	// Parse errors are returned and printed once, below; the help goes to stdout.
	f.fs.SetOutput(io.Discard)
	f.fs.Usage = func() {}
	if len(args) == 0 {
		help(stderr)
		return 2
	}
	if args[0] == "help" {
		help(stdout)
		return 0
	}
	positional, err := f.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		help(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "vss-server admin:", err)
		fmt.Fprintln(stderr, "Run 'vss-server admin --help' for usage.")
		return 2
	}
	cmd := ""
	if len(positional) > 0 {
		cmd, positional = positional[0], positional[1:]
	}
	switch {
	case cmd == "usage" && len(positional) == 0 && !*yes:
	case cmd == "delete-user" && len(positional) == 1 && *user == "" && !*asJSON:
		*user = positional[0]
	case cmd == "usage" || cmd == "delete-user":
		fmt.Fprintf(stderr, "vss-server admin %s: unexpected arguments\n\n%s", cmd, adminUsage)
		return 2
	default:
		fmt.Fprintf(stderr, "vss-server admin: unknown command %q\n\n%s", cmd, adminUsage)
		return 2
	}

	admin, where, closeStore, err := f.open(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "vss-server admin:", err)
		return 1
	}
	defer closeStore()
	if cmd == "usage" {
		var n int
		n, err = printUsage(ctx, admin, *user, *asJSON, stdout)
		if err == nil && n == 0 {
			// Say which store is empty: a store found by mistake is then obvious.
			fmt.Fprintf(stderr, "vss-server admin: no entries in %s\n", where)
		}
	} else {
		err = deleteUser(ctx, admin, *user, *yes, stdin, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "vss-server admin:", err)
		return 1
	}
	return 0
}

// adminFlags are the database flags every admin command takes. The database is found as
// the server finds it (flags, VSS_ variables, the configuration file, the reference
// server's VSS_PSQL_ variables), so an admin command run next to a server reaches the same
// data with the same TLS settings.
type adminFlags struct {
	fs          *flag.FlagSet
	config      *string
	databaseURL *string
	dataDir     *string
	getenv      func(string) string
	stderr      io.Writer
}

func newAdminFlags(name string, getenv func(string) string, stderr io.Writer) *adminFlags {
	fs := flag.NewFlagSet("vss-server "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &adminFlags{fs: fs, getenv: getenv, stderr: stderr}
	f.config = fs.String("config", "",
		"the server's configuration `file` (TOML, the reference server's format included)")
	f.databaseURL = fs.String("database-url", "",
		"`URL` of the PostgreSQL database (postgres://...); default: as the server would find it (env VSS_DATABASE_URL, --config, VSS_PSQL_*)")
	f.dataDir = fs.String("data-dir", "",
		"`directory` of the embedded store, used when there is no database URL (default: env VSS_DATA_DIR, else data)")
	return f
}

// parse parses flags that may come before, between or after positional arguments.
func (f *adminFlags) parse(args []string) ([]string, error) {
	var positional []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, err
		}
		args = f.fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// open opens the store the flags name, as the server would (applying its migrations),
// but only one that exists (see app.OpenExistingStore). where describes it.
func (f *adminFlags) open(ctx context.Context) (admin storage.Admin, where string, closeStore func(), err error) {
	var args []string
	if *f.config != "" {
		args = append(args, "--config", *f.config)
	}
	if *f.databaseURL != "" {
		args = append(args, "--database-url", *f.databaseURL)
	}
	if *f.dataDir != "" {
		args = append(args, "--data-dir", *f.dataDir)
	}
	cfg, _, err := parseConfig(args, f.getenv, f.stderr)
	if err != nil {
		return nil, "", nil, err
	}
	log := slog.New(slog.NewTextHandler(f.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, _, err := app.OpenExistingStore(ctx, cfg, log)
	if err != nil {
		return nil, "", nil, err
	}
	admin, ok := store.(storage.Admin)
	if !ok {
		_ = store.Close()
		return nil, "", nil, errors.New("this store does not support the admin commands")
	}
	return admin, app.StoreLocation(cfg), func() { _ = store.Close() }, nil
}

type usageJSON struct {
	User   string `json:"user"`
	Bytes  int64  `json:"bytes"`
	Keys   int64  `json:"keys"`
	Stores int64  `json:"stores"`
}

// printUsage prints the usage of user (every user when empty) as a table, or with asJSON
// as one line of JSON, and returns the number of users printed.
func printUsage(ctx context.Context, admin storage.Admin, user string, asJSON bool, out io.Writer) (int, error) {
	usage, err := admin.Usage(ctx, user)
	if err != nil {
		return 0, err
	}
	if asJSON {
		// One compact line, as vssctl --json prints (field names in lowerCamelCase).
		rows := make([]usageJSON, len(usage))
		for i, u := range usage {
			rows[i] = usageJSON(u)
		}
		return len(rows), json.NewEncoder(out).Encode(rows)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tBYTES\tKEYS\tSTORES")
	for _, u := range usage {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", u.User, u.Bytes, u.Keys, u.Stores)
	}
	return len(usage), tw.Flush()
}

func deleteUser(ctx context.Context, admin storage.Admin, user string, yes bool, in io.Reader, out io.Writer) error {
	if !yes {
		usage, err := admin.Usage(ctx, user)
		if err != nil {
			return err
		}
		if len(usage) == 0 {
			fmt.Fprintf(out, "user %q stores nothing\n", user)
			return nil
		}
		u := usage[0]
		fmt.Fprintf(out, "Delete %d keys (%d bytes) in %d stores of user %q? Type yes to confirm: ", u.Keys, u.Bytes, u.Stores, user)
		line, err := bufio.NewReader(in).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			return errors.New("not confirmed; nothing deleted")
		}
	}
	n, err := admin.DeleteUser(ctx, user)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "deleted %d keys of user %q\n", n, user)
	return nil
}
