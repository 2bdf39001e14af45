package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	vssclient "github.com/govss/vss/client"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// defaultLeaseTTL is vssctl lease acquire's TTL without --ttl.
const defaultLeaseTTL = 30 * time.Second

// printCursor prints the cursor of the store's latest change.
func (c *command) printCursor(ctx context.Context, cl *vssclient.Client) error {
	cursor, err := cl.GetChangeCursor(ctx, c.storeID)
	if err != nil {
		return err
	}
	c.progress.done()
	if c.json {
		return c.printJSON(&vssv1.GetChangeCursorResponse{Cursor: cursor})
	}
	_, err = fmt.Fprintln(c.stdout, cursor)
	return err
}

// watch prints the store's changes as they commit: after --cursor, or from now on.
func (c *command) watch(ctx context.Context, cl *vssclient.Client) error {
	cursor := c.cursor
	if !c.set["cursor"] {
		var err error
		if cursor, err = cl.GetChangeCursor(ctx, c.storeID); err != nil {
			return err
		}
		if !c.json {
			fmt.Fprintf(c.stderr, "watching store %q from cursor %s\n", c.storeID, cursor)
		}
	}
	c.progress.done()
	seen := 0
	for ch, err := range cl.Watch(ctx, &vssv1.WatchChangesRequest{StoreId: c.storeID, Cursor: cursor, IncludeValues: c.values}) {
		if err != nil {
			return err
		}
		if c.json {
			if err := c.printJSON(ch); err != nil {
				return err
			}
		} else {
			op := "put"
			if ch.GetDeleted() {
				op = "delete"
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%d\t%s", ch.GetCursor(), op, ch.GetKey(), ch.GetVersion(), ch.GetDeviceId())
			if c.values && ch.Value != nil {
				line += "\t" + strconv.Quote(string(ch.GetValue()))
			}
			if _, err := fmt.Fprintln(c.stdout, line); err != nil {
				return localError{err}
			}
		}
		seen++
		if c.count > 0 && seen >= c.count {
			return nil
		}
	}
	return nil // interrupted
}

// lease runs one lease action (acquire, renew, release, get) on the lease NAME.
func (c *command) lease(ctx context.Context, cl *vssclient.Client) error {
	action, name := c.args[0], c.args[1]
	needToken := action == "renew" || action == "release"
	if needToken != c.set["lease-token"] {
		if needToken {
			return usagef("lease %s needs --lease-token, the token of the grant", action)
		}
		return usagef("lease %s does not take --lease-token", action)
	}
	if (action == "get" || action == "release") && c.set["ttl"] {
		return usagef("lease %s does not take --ttl", action)
	}
	if action != "acquire" && c.set["holder"] {
		return usagef("--holder is for lease acquire")
	}
	svc := cl.Service()
	ttl := durationpb.New(c.ttl)
	var lease *vssv1.Lease
	switch action {
	case "acquire":
		holder := c.holder
		if holder == "" {
			holder = c.deviceID
		}
		if holder == "" {
			return usagef("lease acquire needs --holder (or --device-id): who holds the lease")
		}
		resp, err := svc.AcquireLease(ctx, connect.NewRequest(&vssv1.AcquireLeaseRequest{StoreId: c.storeID, Name: name, Holder: holder, Ttl: ttl}))
		if err != nil {
			return err
		}
		lease = resp.Msg.GetLease()
	case "renew":
		resp, err := svc.RenewLease(ctx, connect.NewRequest(&vssv1.RenewLeaseRequest{StoreId: c.storeID, Name: name, Token: c.leaseToken, Ttl: ttl}))
		if err != nil {
			return err
		}
		lease = resp.Msg.GetLease()
	case "release":
		if _, err := svc.ReleaseLease(ctx, connect.NewRequest(&vssv1.ReleaseLeaseRequest{StoreId: c.storeID, Name: name, Token: c.leaseToken})); err != nil {
			return err
		}
		if c.json {
			return c.printValue(map[string]bool{"released": true})
		}
		return nil
	case "get":
		resp, err := svc.GetLease(ctx, connect.NewRequest(&vssv1.GetLeaseRequest{StoreId: c.storeID, Name: name}))
		if err != nil {
			return err
		}
		lease = resp.Msg.GetLease()
	default:
		return usagef("lease: unknown action %q: want acquire, renew, release or get", action)
	}
	c.progress.done()
	if c.json {
		return c.printJSON(lease)
	}
	if !lease.GetHeld() {
		_, err := fmt.Fprintf(c.stdout, "%s\tfree\t%d\n", lease.GetName(), lease.GetToken())
		return err
	}
	_, err := fmt.Fprintf(c.stdout, "%s\t%s\t%d\t%s\n", lease.GetName(), lease.GetHolder(), lease.GetToken(),
		lease.GetTtlRemaining().AsDuration().Round(time.Millisecond))
	return err
}

// fenced returns req as a Connect request carrying the writer's device and, with
// --lease, the lease that fences it.
func fenced[T any](c *command, req *T) *connect.Request[T] {
	r := connect.NewRequest(req)
	if c.set["lease"] {
		r.Header().Set(vssclient.LeaseNameHeader, c.leaseName)
		r.Header().Set(vssclient.LeaseTokenHeader, strconv.FormatInt(c.leaseToken, 10))
	}
	return r
}

// checkFence checks the flags of a fenced write.
func (c *command) checkFence() error {
	if c.set["lease"] != c.set["lease-token"] {
		return usagef("give --lease and --lease-token together: the lease's name and the token of its grant")
	}
	return nil
}
