package main

import (
	"fmt"
	"strconv"

	"github.com/govss/vss/internal/app"
)

// parseLimitFlags fills the quota and rate limit settings of cfg from the values of
// --quota-max-bytes, --quota-max-keys, --rate-limit and --rate-burst.
func parseLimitFlags(cfg *app.Config, quotaBytes, quotaKeys, rateLimit, rateBurst string) error {
	var err error
	if cfg.Quota.MaxBytes, err = strconv.ParseInt(quotaBytes, 10, 64); err != nil || cfg.Quota.MaxBytes < 0 {
		return fmt.Errorf("--quota-max-bytes: want a number of bytes (0 for no limit), got %q", quotaBytes)
	}
	if cfg.Quota.MaxKeys, err = strconv.ParseInt(quotaKeys, 10, 64); err != nil || cfg.Quota.MaxKeys < 0 {
		return fmt.Errorf("--quota-max-keys: want a number of keys (0 for no limit), got %q", quotaKeys)
	}
	if cfg.RateLimit.Rate, err = strconv.ParseFloat(rateLimit, 64); err != nil || !(cfg.RateLimit.Rate >= 0 && cfg.RateLimit.Rate <= 1e9) {
		return fmt.Errorf("--rate-limit: want requests per second (0 for no limit), got %q", rateLimit)
	}
	if cfg.RateLimit.Burst, err = strconv.Atoi(rateBurst); err != nil || cfg.RateLimit.Burst < 0 {
		return fmt.Errorf("--rate-burst: want a number of requests (0 for the default), got %q", rateBurst)
	}
	return nil
}
