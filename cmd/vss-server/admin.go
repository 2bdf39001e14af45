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
	"slices"
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
  vss-server admin export [--user USER] [--out FILE | --checksum-only] [database flags]
      Write a VSS dump (docs/dump-format.md) of every user, or of USER's stores only,
      to FILE (written as FILE.partial and renamed once complete) or to standard output
      (no --out, or --out -), and a summary with its SHA-256 to standard error.
      --checksum-only writes no dump and prints the SHA-256 alone on standard output:
      two stores that give the same sum hold the same data.
  vss-server admin import FILE [--user USER] [--abort] [database flags]
      Write the dump FILE (- for standard input) into the store, which is created as
      the server would create it if there is none; each store id it writes must be
      empty. A dump of one user (export --user) needs --user, the user to write it
      for; a dump of every user takes none. Each store id is verified by checksum. A
      bad dump or a store id that is not empty stops the import and removes what it
      wrote; an interrupted import resumes when the same command runs again, and
      --abort gives it up, removing what it wrote.

The store is found as the server finds it; it must exist: the admin commands other
than import never create one, and say where they looked when there is none.

usage, delete-user and export may run while the server runs; an export of every user
then reads each user in a snapshot of its own, so stop the server to move a
deployment. No wallet may write the store ids being imported: run import before the
server that will serve them starts, or while their wallets are kept away.

Exit codes: 0 success, 1 the command failed (no store there, not confirmed, a bad dump,
a store id that is not empty, an interrupted import, a database error), 2 usage error.

Flags:
`

// runAdmin runs `vss-server admin ...` and returns the process exit code: 0 on success,
// 1 when the command failed, 2 for a usage error. Progress is shown on stderr when it is
// a terminal.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runAdminWith(ctx, args, getenv, stdin, stdout, stderr, isTerminal(stderr))
}

// adminCommandFlags are the flags each admin command takes besides the database flags.
var adminCommandFlags = map[string][]string{
	"usage":       {"user", "json"},
	"delete-user": {"yes"},
	"export":      {"user", "out", "checksum-only"},
	"import":      {"user", "abort"},
}

// runAdminWith is runAdmin, with progress shown on stderr when terminal is true.
func runAdminWith(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, terminal bool) int {
	f := newAdminFlags("admin", getenv, stderr)
	user := f.fs.String("user", "", "usage, export: only this `user`; import: the user a dump of one user is written for")
	asJSON := f.fs.Bool("json", false, "usage: print JSON instead of a table")
	yes := f.fs.Bool("yes", false, "delete-user: delete without asking for confirmation")
	out := f.fs.String("out", "", "export: write the dump to this `file` (- or none: standard output)")
	checksumOnly := f.fs.Bool("checksum-only", false, "export: write no dump; print its SHA-256 on standard output")
	abort := f.fs.Bool("abort", false, "import: give up an interrupted import of the dump, removing what it wrote")
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
	allowed, known := adminCommandFlags[cmd]
	if !known {
		fmt.Fprintf(stderr, "vss-server admin: unknown command %q\n\n%s", cmd, adminUsage)
		return 2
	}
	var misplaced []string
	f.fs.Visit(func(fl *flag.Flag) {
		if !slices.Contains(allowed, fl.Name) && !f.isDatabaseFlag(fl.Name) {
			misplaced = append(misplaced, "--"+fl.Name)
		}
	})
	if len(misplaced) > 0 {
		fmt.Fprintf(stderr, "vss-server admin %s: %s does not apply to %s\nRun 'vss-server admin --help' for usage.\n",
			cmd, strings.Join(misplaced, ", "), cmd)
		return 2
	}
	wantArgs := map[string]int{"usage": 0, "delete-user": 1, "export": 0, "import": 1}[cmd]
	if len(positional) != wantArgs {
		fmt.Fprintf(stderr, "vss-server admin %s: unexpected arguments\n\n%s", cmd, adminUsage)
		return 2
	}
	switch cmd {
	case "export":
		if *checksumOnly && *out != "" {
			fmt.Fprintln(stderr, "vss-server admin export: --checksum-only writes no dump: leave --out out")
			return 2
		}
		return runExport(ctx, f, exportOptions{user: *user, out: *out, checksumOnly: *checksumOnly}, stdout, stderr, terminal)
	case "import":
		return runImport(ctx, f, importOptions{file: positional[0], user: *user, abort: *abort}, stdin, stdout, stderr, terminal)
	case "delete-user":
		*user = positional[0]
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

// isDatabaseFlag reports whether name is one of the database flags, which every admin
// command takes.
func (f *adminFlags) isDatabaseFlag(name string) bool {
	return name == "config" || name == "database-url" || name == "data-dir"
}

// serverConfig returns the server's configuration as the flags, the VSS_ variables and the
// configuration file give it.
func (f *adminFlags) serverConfig() (app.Config, error) {
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
	return cfg, err
}

// openStore opens the store cfg names, as the server would (applying its migrations):
// only one that exists (see app.OpenExistingStore), or with create, one that the server
// would create at its first start if there is none. where describes it.
func (f *adminFlags) openStore(ctx context.Context, cfg app.Config, create bool) (store storage.Store, where string, err error) {
	log := slog.New(slog.NewTextHandler(f.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	where = app.StoreLocation(cfg)
	if !create {
		store, _, err = app.OpenExistingStore(ctx, cfg, log)
		return store, where, err
	}
	if cfg.DatabaseURL == app.MemoryURL {
		return nil, "", errors.New("the in-memory store keeps nothing: set --database-url or --data-dir")
	}
	store, _, err = app.OpenConfiguredStore(ctx, cfg, log)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", where, err)
	}
	return store, where, nil
}

// open opens the store the flags name, as the server would (applying its migrations),
// but only one that exists (see app.OpenExistingStore). where describes it.
func (f *adminFlags) open(ctx context.Context) (admin storage.Admin, where string, closeStore func(), err error) {
	cfg, err := f.serverConfig()
	if err != nil {
		return nil, "", nil, err
	}
	store, where, err := f.openStore(ctx, cfg, false)
	if err != nil {
		return nil, "", nil, err
	}
	admin, ok := store.(storage.Admin)
	if !ok {
		_ = store.Close()
		return nil, "", nil, errors.New("this store does not support the admin commands")
	}
	return admin, where, func() { _ = store.Close() }, nil
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
