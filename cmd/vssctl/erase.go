package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// deleteStore deletes the store c.args[0], after a dry run and a confirmation.
func (c *command) deleteStore(ctx context.Context, cl *vssclient.Client) error {
	if c.set["store-id"] {
		return usagef("delete-store takes the store to delete as its argument, not --store-id")
	}
	if err := c.needConnect(); err != nil {
		return err
	}
	id := c.args[0]
	dry, err := cl.DeleteStore(ctx, id, true)
	if err != nil {
		return err
	}
	what := func(m proto.Message) string {
		r := m.(*vssv1.DeleteStoreResponse)
		return fmt.Sprintf("store %q: %d keys (the global version counted as one when set), %s", id, r.GetKeys(), size(r.GetBytes()))
	}
	return c.confirmDelete(what, dry, func() (proto.Message, error) { return cl.DeleteStore(ctx, id, false) })
}

// deleteAll deletes every store of the user, after a dry run and a confirmation.
func (c *command) deleteAll(ctx context.Context, cl *vssclient.Client) error {
	if c.set["store-id"] {
		return usagef("delete-all deletes every store: it does not take --store-id (vssctl delete-store deletes one)")
	}
	if err := c.needConnect(); err != nil {
		return err
	}
	dry, err := cl.DeleteAllData(ctx, true)
	if err != nil {
		return err
	}
	what := func(m proto.Message) string {
		r := m.(*vssv1.DeleteAllDataResponse)
		return fmt.Sprintf("every store of the user: %d stores, %d keys (global versions included), %s", r.GetStores(), r.GetKeys(), size(r.GetBytes()))
	}
	return c.confirmDelete(what, dry, func() (proto.Message, error) { return cl.DeleteAllData(ctx, false) })
}

// needConnect refuses a --server that only speaks the VSS HTTP API, which has no call
// that deletes a store.
func (c *command) needConnect() error {
	if speaksOnlyVSSHTTP(c.server) {
		return usagef("%s is the URL of a VSS HTTP API, which cannot delete a store: %s needs the server's base URL (Connect)", c.server, c.name)
	}
	return nil
}

// confirmDelete prints what the dry run found, gets the user's confirmation (--yes, or
// yes typed on a terminal), then deletes and prints what was deleted. With --dry-run it
// only prints. what describes an answer.
func (c *command) confirmDelete(what func(proto.Message) string, dry proto.Message, del func() (proto.Message, error)) error {
	if c.dryRun && c.json {
		return c.printJSON(dry)
	}
	fmt.Fprintf(c.stderr, "would delete %s\n", what(dry))
	if c.dryRun {
		return nil
	}
	if !c.yes {
		if !c.interactive {
			return usagef("refusing to delete without a confirmation: standard input is not a terminal, so vssctl cannot ask. " +
				"Check what the line above says, then run the command again with --yes")
		}
		fmt.Fprint(c.stderr, "This cannot be undone. Type yes to delete: ")
		answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return usagef("not confirmed: nothing was deleted")
		}
	}
	resp, err := del()
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	fmt.Fprintf(c.stderr, "deleted %s\n", what(resp))
	return nil
}
