package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// seedHelp is what vssctl --help says about the seed flags.
const seedHelp = `With --seed-file (or --vss-seed-file), get, put, delete and list go through the
Go client's encryption layer (client/encrypted), as vss-client-ng applications and LDK
Node store data: key names obfuscated, values sealed with ChaCha20-Poly1305 and verified
when read (a value that does not verify is exit code 9, and nothing is printed), and
vssctl ldk reads an LDK Node store. The keys are derived from the seed as LDK Node derives
them. THE SEED FILE IS THE WALLET'S SECRET: whoever reads it can spend the wallet's funds
and read all its data. vssctl only reads it, never prints or sends it, and refuses a seed
file that group or others may read or write (chmod 600 it; LDK Node writes it 0400).
Without other credentials, --seed-file also signs requests with LDK Node's signing key of
the seed (m/877'/139'), so vssctl is the same user as the wallet.
`

// seed is what --seed-file or --vss-seed-file give: the encryption keys and, for a wallet
// seed, LDK Node's signing key.
type seed struct {
	keys    encrypted.Keys
	signing *secp256k1.PrivateKey // nil for a VSS seed
}

// loadSeed reads the seed the flags or VSSCTL_SEED_FILE name; nil when none is given.
func (c *command) loadSeed() (*seed, error) {
	walletFile, vssFile := c.seedFile, c.vssSeedFile
	if !c.set["seed-file"] && !c.set["vss-seed-file"] && c.acceptsSeed() {
		walletFile = c.getenv("VSSCTL_SEED_FILE")
	}
	switch {
	case walletFile != "" && vssFile != "":
		return nil, usagef("give either --seed-file or --vss-seed-file, not both")
	case walletFile != "":
		data, err := readSecretFile(walletFile, "--seed-file")
		if err != nil {
			return nil, err
		}
		raw := decodeSeed(data, 16, 64)
		if raw == nil {
			return nil, usagef("--seed-file %s: want a wallet seed of 16 to 64 bytes, raw (LDK Node's keys_seed file: 64 bytes) or in hex", walletFile)
		}
		keys, err := encrypted.KeysFromWalletSeed(raw)
		if err != nil {
			return nil, localError{err}
		}
		signing, err := encrypted.SigningKeyFromWalletSeed(raw)
		if err != nil {
			return nil, localError{err}
		}
		return &seed{keys: keys, signing: signing}, nil
	case vssFile != "":
		data, err := readSecretFile(vssFile, "--vss-seed-file")
		if err != nil {
			return nil, err
		}
		raw := decodeSeed(data, 32, 32)
		if raw == nil {
			return nil, usagef("--vss-seed-file %s: want a 32-byte VSS seed, raw or as 64 hex digits", vssFile)
		}
		return &seed{keys: encrypted.KeysFromVSSSeed([32]byte(raw))}, nil
	}
	return nil, nil
}

// acceptsSeed reports whether the command takes the seed flags.
func (c *command) acceptsSeed() bool {
	for _, f := range c.doc.flags {
		if f == "seed-file" {
			return true
		}
	}
	return false
}

// decodeSeed returns the seed in data, hex (whitespace around it ignored) or raw,
// when it has min to max bytes; nil otherwise.
func decodeSeed(data []byte, min, max int) []byte {
	if text := bytes.TrimSpace(data); len(text)%2 == 0 {
		if raw, err := hex.DecodeString(string(text)); err == nil && len(raw) >= min && len(raw) <= max {
			return raw
		}
	}
	if len(data) >= min && len(data) <= max {
		return data
	}
	return nil
}

// readSecretFile reads a file that holds a secret, refusing it, as ssh refuses a private
// key, when group or others may read or write it.
func readSecretFile(path, flag string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, localError{fmt.Errorf("%s: %w", flag, err)}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, localError{fmt.Errorf("%s: %w", flag, err)}
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, localError{fmt.Errorf("%s %s: group or others may access it (mode %04o); the seed is the wallet's secret: chmod 600 %s", flag, path, perm, path)}
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, localError{fmt.Errorf("%s: %w", flag, err)}
	}
	return data, nil
}

// fencedWriter sends the writes of the encrypted layer with the --lease fence, if any.
type fencedWriter struct {
	c   *command
	svc vssv1connect.VssServiceClient
}

func (w fencedWriter) PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	resp, err := w.svc.PutObjects(ctx, fenced(w.c, req))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (w fencedWriter) DeleteObject(ctx context.Context, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	resp, err := w.svc.DeleteObject(ctx, fenced(w.c, req))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (c *command) encryptedStore(cl *vssclient.Client) *encrypted.Store {
	return encrypted.NewStore(cl, c.seed.keys).WithWriter(fencedWriter{c: c, svc: cl.Service()})
}

func (c *command) getEncrypted(ctx context.Context, cl *vssclient.Client) error {
	value, version, err := c.encryptedStore(cl).Get(ctx, c.storeID, c.args[0])
	if err != nil {
		return err
	}
	c.progress.done()
	if c.json {
		return c.printJSON(&vssv1.GetObjectResponse{Value: &vssv1.KeyValue{Key: c.args[0], Version: version, Value: value}})
	}
	_, err = c.stdout.Write(value)
	return err
}

func (c *command) putEncrypted(ctx context.Context, cl *vssclient.Client, value []byte) error {
	b := encrypted.Batch{Items: []encrypted.Item{{Key: c.args[0], Value: value, Version: c.version}}}
	if c.set["global-version"] {
		b.GlobalVersion = &c.globalVersion
	}
	if err := c.encryptedStore(cl).PutBatch(ctx, c.storeID, b); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(&vssv1.PutObjectResponse{})
	}
	return nil
}

// listEncrypted lists the keys in clear, every page or, with --page-size or
// --page-token, one (the next page token on standard error); a prefix applies to the
// names in clear.
func (c *command) listEncrypted(ctx context.Context, cl *vssclient.Client) (kvs []encrypted.KeyVersion, next string, err error) {
	s := c.encryptedStore(cl)
	var all []encrypted.KeyVersion
	if c.set["page-size"] || c.set["page-token"] {
		all, next, err = s.ListPage(ctx, c.storeID, c.pageToken, int32(c.pageSize))
	} else {
		all, err = s.List(ctx, c.storeID)
	}
	if err != nil {
		return nil, "", err
	}
	var out []encrypted.KeyVersion
	for _, kv := range all {
		if strings.HasPrefix(kv.Key, c.prefix) {
			out = append(out, kv)
		}
	}
	return out, next, nil
}

func (c *command) printKeyVersions(kvs []encrypted.KeyVersion) error {
	if c.json {
		resp := &vssv1.ListKeyVersionsResponse{}
		for _, kv := range kvs {
			resp.KeyVersions = append(resp.KeyVersions, &vssv1.KeyValue{Key: kv.Key, Version: kv.Version})
		}
		return c.printJSON(resp)
	}
	var out bytes.Buffer
	for _, kv := range kvs {
		fmt.Fprintf(&out, "%s\t%d\n", kv.Key, kv.Version)
	}
	_, err := c.stdout.Write(out.Bytes())
	return err
}

func (c *command) deleteEncrypted(ctx context.Context, cl *vssclient.Client) error {
	s := c.encryptedStore(cl)
	if !c.set["prefix"] {
		if err := s.Delete(ctx, c.storeID, c.args[0], c.version); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(&vssv1.DeleteObjectResponse{})
		}
		return nil
	}
	listed, _, err := c.listEncrypted(ctx, cl)
	if err != nil {
		return err
	}
	deleted := 0
	for keys := listed; len(keys) > 0; {
		batch := keys[:min(len(keys), maxItemsPerRequest)]
		keys = keys[len(batch):]
		b := encrypted.Batch{}
		for _, kv := range batch {
			b.Deletes = append(b.Deletes, encrypted.Item{Key: kv.Key, Version: kv.Version})
		}
		if err := s.PutBatch(ctx, c.storeID, b); err != nil {
			return fmt.Errorf("after deleting %d of %d keys: %w", deleted, len(listed), err)
		}
		deleted += len(batch)
		c.progress.show("deleted %d of %d keys", deleted, len(listed))
	}
	c.progress.done()
	if c.json {
		return c.printValue(map[string]int{"deleted": deleted})
	}
	_, err = fmt.Fprintf(c.stderr, "deleted %d keys\n", deleted)
	return err
}

// ldk runs vssctl ldk: ls [PRIMARY [SECONDARY]] or get PRIMARY SECONDARY KEY.
func (c *command) ldk(ctx context.Context, cl *vssclient.Client) error {
	if c.seed == nil {
		return usagef("ldk needs the wallet's seed: --seed-file PATH (or --vss-seed-file PATH)")
	}
	sub, args := c.args[0], c.args[1:]
	switch {
	case sub == "ls" && len(args) <= 2:
	case sub == "get" && len(args) == 3:
	default:
		return usagef("ldk: want ls [PRIMARY [SECONDARY]] or get PRIMARY SECONDARY KEY")
	}
	// Detect the schema as LDK Node does, without recording it: vssctl only reads.
	schema, recorded, err := encrypted.DetectLDKSchema(ctx, cl, c.seed.keys, c.storeID)
	if err != nil {
		return err
	}
	how := "recorded in the store"
	switch {
	case !recorded && schema == encrypted.LDKSchemaV0:
		how = "not recorded; LDK Node's V0 wallet keys (bdk_wallet#…) are there"
	case !recorded:
		how = "not recorded: a new or empty store, or not LDK Node's"
	}
	fmt.Fprintf(c.stderr, "LDK Node store %q, schema %v (%s)\n", c.storeID, schema, how)
	l := encrypted.NewLDKStore(cl, c.seed.keys, c.storeID, schema)
	switch {
	case sub == "get":
		value, err := l.Read(ctx, args[0], args[1], args[2])
		if err != nil {
			return ldkError(err)
		}
		c.progress.done()
		if c.json {
			return c.printValue(map[string]any{"primary": args[0], "secondary": args[1], "key": args[2], "value": value})
		}
		_, err = c.stdout.Write(value)
		return err
	case len(args) == 0:
		nss, err := l.ListNamespaces(ctx)
		if err != nil {
			return err
		}
		c.progress.done()
		if c.json {
			out := []ldkNamespace{}
			for _, n := range nss {
				out = append(out, ldkNamespace{n.Primary, n.Secondary, n.Keys})
			}
			return c.printValue(out)
		}
		var b bytes.Buffer
		for _, n := range nss {
			for _, k := range n.Keys {
				fmt.Fprintf(&b, "%s\t%s\t%s\n", n.Primary, n.Secondary, k)
			}
		}
		_, err = c.stdout.Write(b.Bytes())
		return err
	default:
		args = append(args, "")
		keys, err := l.ListKeys(ctx, args[0], args[1])
		if err != nil {
			return ldkError(err)
		}
		c.progress.done()
		if c.json {
			return c.printValue(ldkNamespace{args[0], args[1], keys})
		}
		var b bytes.Buffer
		for _, k := range keys {
			b.WriteString(k + "\n")
		}
		_, err = c.stdout.Write(b.Bytes())
		return err
	}
}

// ldkNamespace is a pair of namespaces and its keys, as --json prints it.
type ldkNamespace struct {
	Primary   string   `json:"primary"`
	Secondary string   `json:"secondary"`
	Keys      []string `json:"keys"`
}

// ldkError makes a name LDK Node refuses a usage error.
func ldkError(err error) error {
	if errors.Is(err, encrypted.ErrInvalidLDKName) {
		return usageError{err}
	}
	return err
}
