package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/govss/vss/internal/textwrap"
)

// defaultServer is where `make run` serves.
const defaultServer = "http://127.0.0.1:8080"

// commandDoc describes one command: its arguments, its help and its own flags. The
// help, the argument checks and the shell completion are all made from commandDocs and
// flagDocs.
type commandDoc struct {
	name    string
	args    string // the synopsis after the command's name
	summary string // one line for vssctl --help
	help    string // the paragraph of vssctl COMMAND --help
	// minArgs and maxArgs bound the number of arguments.
	minArgs, maxArgs int
	// remote commands call a server, and take the connection and credential flags.
	remote bool
	// flags are the command's own flags, beyond the common ones (remote commands) and
	// --json.
	flags []string
	// without are common flags the command does not take.
	without []string
}

// vssHTTPSourceHelp and vssHTTPTargetHelp tell how export, import and migrate work with
// a server that only speaks the VSS HTTP API.
const (
	vssHTTPSourceHelp = "A server that only speaks the VSS HTTP API, such as the reference server, is given by the " +
		"URL its clients use, whose path ends in /vss (http://host:8080/vss); every other URL is a Connect server. " +
		"As a source it cannot list its stores: name each with --store-id (repeat it; --store-id \"\" is the " +
		"empty store id). vssctl lists each store's keys, then reads them one by one, oldest first: the dump is " +
		"not a snapshot (stop the wallet meanwhile), a key deleted in between is skipped with a warning, and since " +
		"the API reads a global version never set as 0, a global version of 0 is carried as none."
	vssHTTPTargetHelp = "As a target, such a server cannot keep versions: a write there chooses no version, and every " +
		"key is created anew at version 1, so vssctl refuses unless --allow-new-versions is given, and wallets " +
		"that cached versions must read their keys again. Each store must then be empty, or hold the first keys " +
		"of the dump's store from an interrupted run, which are skipped; the keys are created in the dump's " +
		"order, so the listing order is kept, and a global version G is set by G checked bumps from 0 (up to " +
		"1000; beyond that it is not set, with a warning). Each store is then read back and its keys, values and " +
		"order compared with the dump (--no-verify skips this)."
)

var commandDocs = []commandDoc{
	{
		name: "get", args: "KEY", summary: "print the value of a key", minArgs: 1, maxArgs: 1, remote: true,
		flags: seedFlags,
		help: "Print the value of KEY, byte for byte; with --json, the key, its version and its value " +
			"(base64) as one line of JSON. A missing key is exit code 2. The key global_version reads the " +
			"store's global version. With a seed, KEY is the name in clear: the value is read from its " +
			"obfuscated name, verified and decrypted; one that does not verify is exit code 9.",
	},
	{
		name: "put", args: "[--version N] [--global-version N] KEY (VALUE | --file PATH)", summary: "write a key",
		minArgs: 1, maxArgs: 2, remote: true, flags: append([]string{"version", "global-version", "file", "lease", "lease-token"}, seedFlags...),
		help: "Write KEY. --version 0 (the default) creates it and fails if it exists, --version N updates " +
			"version N to N+1, --version -1 writes unconditionally. --global-version N also checks and bumps " +
			"the store's global version. The value is VALUE, or the contents of --file PATH (- for standard " +
			"input). A version that does not match is exit code 3 and writes nothing. With a seed, the name " +
			"is obfuscated and the value sealed with the version the write is sent with, as vss-client-ng " +
			"applications write.",
	},
	{
		name: "delete", args: "[--version N] KEY | --prefix P", summary: "delete a key, or every key with a prefix",
		minArgs: 0, maxArgs: 1, remote: true, flags: append([]string{"version", "prefix", "lease", "lease-token"}, seedFlags...),
		help: "Delete KEY: --version -1 (the default) whatever its version, --version N only at version N. " +
			"Deleting a missing key succeeds. With --prefix P instead of KEY, delete every key that starts " +
			"with P (\"\" for every key of the store), each at the version listed, up to 1000 keys per " +
			"request; a key changed meanwhile stops the deletion with exit code 3, and the keys deleted " +
			"before stay deleted. With a seed, KEY and P are names in clear.",
	},
	{
		name: "list", args: "[--prefix P] [--page-size N] [--page-token T]", summary: "list keys and versions",
		minArgs: 0, maxArgs: 0, remote: true, flags: append([]string{"prefix", "page-size", "page-token"}, seedFlags...),
		help: "Print \"KEY<tab>VERSION\" lines, newest created first, and the store's global version on " +
			"standard error. Without --page-size and --page-token it lists every page; with either, one page, " +
			"and the next page token on standard error. With a seed, the names in clear (--prefix applies to " +
			"the names in clear, after paging); a name that does not deobfuscate with the seed's keys is exit " +
			"code 9.",
	},
	{
		name: "ldk", args: "ls [PRIMARY [SECONDARY]] | get PRIMARY SECONDARY KEY", summary: "list and read an LDK Node wallet's store",
		minArgs: 1, maxArgs: 4, remote: true, flags: seedFlags,
		help: "Open the store as LDK Node's VSS store does, with its wallet seed (--seed-file, the node's " +
			"keys_seed file): the schema generation (V1, or V0 for stores written before LDK Node recorded " +
			"it) is found as LDK Node finds it and printed on standard error; nothing is written. ls prints " +
			"every key as \"PRIMARY<tab>SECONDARY<tab>KEY\" lines, namespaces and keys in clear; ls PRIMARY " +
			"[SECONDARY] prints the keys of that namespace, one per line. get prints the value of a key, " +
			"verified and decrypted, byte for byte (\"\" for an empty namespace). With --json, one line of " +
			"JSON. LDK Node signs its requests with a key of the seed: without other credentials vssctl signs " +
			"with the same key, so it is the wallet's user. A value or name that does not verify is exit code 9.",
	},
	{
		name: "cursor", summary: "print where the store's change feed stands", minArgs: 0, maxArgs: 0, remote: true,
		help: "Print the cursor of the store's latest change: vssctl watch --cursor C prints the changes after " +
			"it. A device that starts from nothing takes the cursor, lists the store, then watches from the " +
			"cursor. The first cursor (or watch) of a store starts recording its changes.",
	},
	{
		name: "watch", args: "[--cursor C] [--values] [--count N]", summary: "print the store's changes as they happen",
		minArgs: 0, maxArgs: 0, remote: true, flags: []string{"cursor", "values", "count"},
		help: "Follow the store's change feed and print each change as it commits, on any server instance: " +
			"\"CURSOR<tab>put|delete<tab>KEY<tab>VERSION<tab>DEVICE\" lines (with --values, the value follows, " +
			"quoted), or with --json one protobuf JSON Change per line. Without --cursor it starts from now " +
			"(and says from which cursor on standard error); with --cursor C it first prints every change " +
			"after C. It reconnects and resumes by itself when the connection breaks, and runs until " +
			"interrupted or, with --count N, until it has printed N changes. A cursor the server no longer " +
			"holds (older than its retention) is exit code 8: list the store again and watch from now. The " +
			"first watch of a store starts recording its changes.",
	},
	{
		name: "lease", args: "(acquire | renew | release | get) NAME", summary: "take, renew, give up or show a lease on the store",
		minArgs: 2, maxArgs: 2, remote: true, flags: []string{"ttl", "holder", "lease-token"},
		help: "Manage the lease NAME of the store. acquire grants it to --holder (default --device-id) for " +
			"--ttl (1s to 1h, default 30s) and prints \"NAME<tab>HOLDER<tab>TOKEN<tab>TIME LEFT\"; a lease " +
			"another holder has is exit code 8, and the message names them. renew extends the grant with " +
			"--lease-token T for --ttl; release gives it up; get prints it (\"NAME<tab>free<tab>TOKEN\" " +
			"when nobody holds it). A grant that is no longer held (expired, released, taken by another " +
			"since) is exit code 8. put and delete with --lease NAME --lease-token T write only while that " +
			"grant holds the lease: the token is the fence against a holder that lost it without noticing.",
	},
	{
		name: "whoami", summary: "print the user the server sees for the credentials", minArgs: 0, maxArgs: 0, remote: true,
		flags: []string{"seed-file"},
		help: "Check the credentials with the server (a read of the store's global version) and print the user " +
			"they act as. The server has no call that returns the user, so vssctl derives it the way the server " +
			"does: under the signature scheme the user is the public key of --private-key (66 hex digits); with " +
			"a bearer token, or a token from --lnurl-auth, it is the token's sub claim; without credentials (a " +
			"server run with --auth none) it is \"unauthenticated\". Refused credentials are exit code 4.",
	},
	{
		name: "export", args: "[--out FILE]", summary: "write every store of the user to a dump", minArgs: 0, maxArgs: 0,
		remote: true, flags: []string{"out"},
		help: "Write every store of the user, with each key's version and value as stored, each store's global " +
			"version and the listing order, as a VSS dump (docs/dump-format.md) to FILE, or to standard output " +
			"without --out or with --out -. The dump is written to FILE.partial and renamed to FILE only once it " +
			"is complete, so an export that is interrupted never leaves a FILE that looks whole. vssctl reads the " +
			"bytes through the dump reader as they arrive, which checks every record and checksum, then prints " +
			"the stores, entries, bytes and the dump's SHA-256 on standard error (with --json, on standard " +
			"output). Over Connect the server exports every store in one snapshot (ExportData), and --store-id " +
			"is not taken. " + vssHTTPSourceHelp,
	},
	{
		name: "import", args: "FILE", summary: "import a dump into the user's empty stores", minArgs: 1, maxArgs: 1,
		remote: true, flags: []string{"abort", "chunk-size", "allow-new-versions", "no-verify"},
		help: "Import the dump FILE (- for standard input) into the user's stores, keeping each key's version, " +
			"each global version and the listing order. Every store of the dump must be empty on the server: " +
			"a store that is not is refused with exit code 8 (vssctl delete-store deletes one). The dump goes " +
			"over Connect (ImportData) in requests of --chunk-size bytes (4MiB by default, more when a record " +
			"needs it), and the server commits as it reads: running the same command again resumes an " +
			"interrupted import, since the import's id comes from the dump's header; --abort gives it up and " +
			"removes what it wrote. The import ends when the server has verified every store by checksum; " +
			"vssctl checks that the server's SHA-256 is the dump's and prints the stores, entries and SHA-256. " +
			"A bad dump (truncated, altered, of another format version) is exit code 5, and nothing of it stays " +
			"imported. " + vssHTTPTargetHelp,
	},
	{
		name: "migrate", args: "--from URL --to URL", summary: "move every store of the user from one server to another",
		minArgs: 0, maxArgs: 0, remote: true, without: []string{"server"},
		flags: []string{"from", "to", "to-private-key", "to-private-key-file", "to-token", "to-lnurl-auth", "chunk-size",
			"allow-new-versions", "no-verify", "abort"},
		help: "Stream the export of the server --from into an import on the server --to, with no file in " +
			"between, as export and import do. The source's credentials are the usual flags (--private-key, " +
			"--token, --lnurl-auth and the environment); the target's are --to-private-key, " +
			"--to-private-key-file, --to-token and --to-lnurl-auth (env VSSCTL_TO_PRIVATE_KEY, VSSCTL_TO_TOKEN). " +
			"Without any of them the target is signed with the source's private key, the same wallet's user on " +
			"both; a token is never sent to the other server. An interrupted migrate resumes when run again with " +
			"the same URLs and credentials: the import's id comes from them, and the target skips what it " +
			"committed (--abort gives the import up). At the end the target's SHA-256 must be the source dump's; " +
			"then vssctl exports the target and compares each store's checksum again (--no-verify skips that " +
			"second export). A result that does not match is exit code 9. " + vssHTTPSourceHelp + " " + vssHTTPTargetHelp,
	},
	{
		name: "delete-store", args: "STORE_ID", summary: "delete one store of the user, with everything in it",
		minArgs: 1, maxArgs: 1, remote: true, flags: []string{"dry-run", "yes"},
		help: "Delete the store STORE_ID (\"\" for the empty store id): every key, its global version, its change " +
			"feed and its leases. vssctl first prints what would be deleted (a dry run on the server), then " +
			"asks to type yes when standard input is a terminal; otherwise it needs --yes. --dry-run stops after " +
			"printing. There is no undo: export the store first if you may want it back.",
	},
	{
		name: "delete-all", summary: "delete every store of the user", minArgs: 0, maxArgs: 0, remote: true,
		flags: []string{"dry-run", "yes"},
		help: "Delete every store of the user, as delete-store deletes one. vssctl first prints what would be " +
			"deleted (a dry run on the server), then asks to type yes when standard input is a terminal; " +
			"otherwise it needs --yes. --dry-run stops after printing. There is no undo: vssctl export first.",
	},
	{
		name: "keygen", summary: "create a private key for the signature scheme", minArgs: 0, maxArgs: 0, flags: []string{"file"},
		help: "Create a random secp256k1 private key and print it as 64 hex digits, the format --private-key, " +
			"--private-key-file and VSSCTL_PRIVATE_KEY accept, and its public key, the user the server will " +
			"see, on standard error. With --file PATH the private key is written to a new file PATH (mode 0600, " +
			"never overwritten) and the public key to standard output. With --json, both as one line of JSON. " +
			"Keep the private key secret: whoever holds it reads and writes the user's data.",
	},
	{
		name: "completion", args: "(bash | zsh | fish)", summary: "print a shell completion script", minArgs: 1, maxArgs: 1,
		help: "Print a completion script for bash, zsh or fish. For example: source <(vssctl completion bash) " +
			"in ~/.bashrc; vssctl completion zsh > \"${fpath[1]}/_vssctl\"; vssctl completion fish > " +
			"~/.config/fish/completions/vssctl.fish.",
	},
	{
		name: "version", summary: "print vssctl's version (also vssctl --version)", minArgs: 0, maxArgs: 0,
		help: "Print the version, commit, build date and Go version of vssctl.",
	},
}

// flagDoc describes one flag.
type flagDoc struct {
	name, arg, usage string
	// common flags apply to every remote command.
	common bool
}

var flagDocs = []flagDoc{
	{name: "server", arg: "URL", common: true, usage: "the server's base URL (env VSSCTL_SERVER; default " + defaultServer + ")"},
	{name: "store-id", arg: "ID", common: true, usage: "the store (env VSSCTL_STORE_ID; default the empty store id); export and migrate from a server that only speaks the VSS HTTP API: a store to move (repeat the flag for each)"},
	{name: "private-key", arg: "HEX", common: true, usage: "a secp256k1 private key (64 hex digits, see vssctl keygen): sign every request with the signature scheme (env VSSCTL_PRIVATE_KEY)"},
	{name: "private-key-file", arg: "PATH", common: true, usage: "read the private key from a file (hex, or 32 raw bytes)"},
	{name: "token", arg: "JWT", common: true, usage: "send \"Authorization: Bearer JWT\" (env VSSCTL_TOKEN)"},
	{name: "lnurl-auth", arg: "URL", common: true, usage: "log in at an LNURL-auth issuer, such as https://vss.example.com/auth/lnurl, with the private key as the linking key, and send the token it issues"},
	{name: "device-id", arg: "ID", common: true, usage: "name this device in the writes, as their changes show it in the change feed (env VSSCTL_DEVICE_ID)"},
	{name: "timeout", arg: "DURATION", common: true, usage: "time limit of each attempt (default 30s; 5m for export, import and migrate, whose requests carry chunks of the dump)"},
	{name: "retries", arg: "N", common: true, usage: "attempts per request, the first included (default 5); retries happen on unavailable, internal and transport errors only"},
	{name: "json", usage: "print the answer as one line of JSON (protobuf JSON for server answers)"},
	{name: "version", arg: "N", usage: "the key's version (see the command's help)"},
	{name: "global-version", arg: "N", usage: "check and bump the store's global version, which must be N"},
	{name: "file", arg: "PATH", usage: "put: read the value from PATH (- for standard input); keygen: write the private key to PATH"},
	{name: "prefix", arg: "P", usage: "only the keys that start with P (literally)"},
	{name: "page-size", arg: "N", usage: "list one page of at most N keys (the server caps it)"},
	{name: "page-token", arg: "T", usage: "list the page after the one that gave the token T"},
	{name: "cursor", arg: "C", usage: "watch the changes after the cursor C (default: from now)"},
	{name: "values", usage: "print the values of the changes too"},
	{name: "count", arg: "N", usage: "stop after N changes"},
	{name: "ttl", arg: "DURATION", usage: "how long the grant lasts unless renewed, 1s to 1h (default 30s)"},
	{name: "holder", arg: "ID", usage: "who acquires the lease (default --device-id)"},
	{name: "lease", arg: "NAME", usage: "write only while the lease NAME is held with --lease-token"},
	{name: "lease-token", arg: "T", usage: "the fencing token of the lease's grant (vssctl lease acquire prints it)"},
	{name: "out", arg: "FILE", usage: "write the dump to FILE, through FILE.partial (default, or -: standard output)"},
	{name: "from", arg: "URL", usage: "the server to move the data from (its base URL, or the /vss URL of a server that only speaks the VSS HTTP API); authenticated with --private-key, --token or --lnurl-auth"},
	{name: "to", arg: "URL", usage: "the server to move the data to (its base URL, or the /vss URL of a server that only speaks the VSS HTTP API)"},
	{name: "to-private-key", arg: "HEX", usage: "sign the target's requests with this secp256k1 private key (env VSSCTL_TO_PRIVATE_KEY; default the source's private key)"},
	{name: "to-private-key-file", arg: "PATH", usage: "read the target's private key from a file (hex, or 32 raw bytes)"},
	{name: "to-token", arg: "JWT", usage: "send \"Authorization: Bearer JWT\" to the target (env VSSCTL_TO_TOKEN)"},
	{name: "to-lnurl-auth", arg: "URL", usage: "log in at the target's LNURL-auth issuer with --to-private-key as the linking key"},
	{name: "chunk-size", arg: "BYTES", usage: "bytes of dump per ImportData request, from 4KiB to 64MiB, such as 1048576, 512KiB or 4MiB (default 4MiB); a record larger than that is sent whole"},
	{name: "allow-new-versions", usage: "import into a server that only speaks the VSS HTTP API although every key gets a new version there (1): clients that cached versions must read again"},
	{name: "no-verify", usage: "skip the check that reads the target again: migrate's second export, or reading back a VSS HTTP target"},
	{name: "abort", usage: "give the import up: the server removes everything it wrote"},
	{name: "dry-run", usage: "print what would be deleted, and delete nothing"},
	{name: "yes", usage: "delete without asking (needed when standard input is not a terminal)"},
	{name: "seed-file", arg: "PATH", usage: "the wallet seed (LDK Node's keys_seed file: 64 raw bytes, or hex): encrypt names and values with the keys LDK Node derives from it, and sign with its signing key unless other credentials are given (env VSSCTL_SEED_FILE). THE WALLET'S SECRET: refused unless only its owner may read it (chmod 600)"},
	{name: "vss-seed-file", arg: "PATH", usage: "a 32-byte VSS seed (LDK Node's m/877' key; raw or 64 hex digits) instead of the wallet seed: encryption only, no signing key. Also a secret: chmod 600"},
}

// seedFlags are the flags of the commands that can go through the encryption layer.
var seedFlags = []string{"seed-file", "vss-seed-file"}

// exitCodesHelp ends vssctl --help.
const exitCodesHelp = `Exit codes:
  0  success
  1  usage error, or a local failure (unreadable file, malformed key)
  2  not found: the key does not exist
  3  conflict: a version did not match; nothing was written
  4  authentication refused
  5  invalid request: a key or store id beyond the server's limits, a value larger than
     the server accepts, a page token the server did not issue; a bad dump (truncated,
     altered, of another format version), of which nothing stays imported
  6  the server failed or could not be reached (unavailable, internal, timeout)
  7  refused by the user's quota or rate limit: nothing was written; a rate-limited
     request may be retried later
  8  a lease is held by another holder, or no longer held with the token given (nothing
     was written); or a change-feed cursor the server no longer holds (list the store
     again); or an import into a store that is not empty
  9  with a seed: what the server returned does not verify (a value altered, moved from
     another key or rolled back, or not written with this seed's keys); nothing printed.
     For import and migrate: what the target holds does not match the source's checksum
`

func lookupCommand(name string) (commandDoc, bool) {
	i := slices.IndexFunc(commandDocs, func(c commandDoc) bool { return c.name == name })
	if i < 0 {
		return commandDoc{}, false
	}
	return commandDocs[i], true
}

func lookupFlag(name string) flagDoc {
	return flagDocs[slices.IndexFunc(flagDocs, func(f flagDoc) bool { return f.name == name })]
}

// flagsOf returns the names of the flags command c takes, its own first.
func flagsOf(c commandDoc) []string {
	names := slices.Clone(c.flags)
	if c.name != "version" && c.name != "completion" {
		names = append(names, "json")
	}
	if c.remote {
		for _, f := range flagDocs {
			if f.common && !slices.Contains(c.without, f.name) {
				names = append(names, f.name)
			}
		}
	}
	return names
}

// commandNames lists the commands, for messages and completion.
func commandNames() []string {
	names := make([]string, len(commandDocs))
	for i, c := range commandDocs {
		names[i] = c.name
	}
	return names
}

// writeUsage prints vssctl --help.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "vssctl reads and writes the keys of a VSS server.\n\nUsage:\n  vssctl [flags] COMMAND [arguments]\n\nCommands:\n")
	for _, c := range commandDocs {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'vssctl COMMAND --help' for a command's arguments and flags.\n\n"+
		"Flags of the commands that call a server (anywhere on the line; -- ends the flags):\n")
	for _, f := range flagDocs {
		if f.common || f.name == "json" {
			writeFlag(w, f)
		}
	}
	fmt.Fprint(w, "  -h, --help\n        print this help, or a command's\n\n"+
		"Without --private-key, --token or --lnurl-auth, requests carry no credentials (for a\n"+
		"server run with --auth none).\n\n"+seedHelp+"\n"+exitCodesHelp)
}

// writeCommandUsage prints vssctl COMMAND --help.
func writeCommandUsage(w io.Writer, c commandDoc) {
	fmt.Fprintf(w, "Usage: vssctl [flags] %s", c.name)
	if c.args != "" {
		fmt.Fprint(w, " "+c.args)
	}
	fmt.Fprint(w, "\n\n")
	for _, line := range textwrap.Lines(c.help, 88) {
		fmt.Fprintln(w, line)
	}
	if names := flagsOf(c); len(names) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		for _, name := range names {
			writeFlag(w, lookupFlag(name))
		}
	}
	fmt.Fprint(w, "\nExit codes: see vssctl --help.\n")
}

func writeFlag(w io.Writer, f flagDoc) {
	line := "  --" + f.name
	if f.arg != "" {
		line += " " + f.arg
	}
	fmt.Fprintln(w, line)
	for _, l := range textwrap.Lines(f.usage, 80) {
		fmt.Fprintln(w, "        "+l)
	}
}
