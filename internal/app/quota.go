package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/govss/vss/storage"
)

// applyQuota makes store enforce q. Every store of this server supports quotas; the
// usage they counted in an earlier run is forgotten and recounted per user, because a
// run with quotas off (or the reference server) does not keep it.
func applyQuota(ctx context.Context, store storage.Store, q storage.Quota, log *slog.Logger) error {
	qs, ok := store.(storage.QuotaStore)
	if !ok {
		if q.Enabled() {
			return fmt.Errorf("this store does not support quotas")
		}
		return nil
	}
	if err := qs.SetQuota(ctx, q); err != nil {
		return fmt.Errorf("set up quotas: %w", err)
	}
	if q.Enabled() {
		log.Info("per-user quotas enabled", "max_bytes", q.MaxBytes, "max_keys", q.MaxKeys)
	}
	return nil
}
