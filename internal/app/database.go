package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"

	"github.com/govss/vss/storage/postgres"
)

// DefaultDBMaxConns is the size of the PostgreSQL connection pool unless configured.
const DefaultDBMaxConns = postgres.DefaultMaxConns

// DatabaseOptions holds the PostgreSQL settings a database URL cannot carry: those of
// the reference server's configuration.
type DatabaseOptions struct {
	// TLS makes every connection use TLS, verifying the server's certificate and host
	// name against the system's roots and RootPEM; it never falls back to plaintext.
	TLS bool
	// RootPEM holds extra root certificates (PEM) to trust, with TLS.
	RootPEM string
	// CreateFrom, when set, names an existing database (such as "postgres") to connect
	// to first and create the database of the URL from, when that one does not exist.
	CreateFrom string
	// MaxConns is the size limit of the connection pool; 0 means
	// postgres.DefaultMaxConns. A pool_max_conns parameter in the URL wins.
	MaxConns int
}

// postgresOptions translates o into options of postgres.Open.
func (o DatabaseOptions) postgresOptions() ([]postgres.Option, error) {
	var opts []postgres.Option
	if o.TLS {
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if o.RootPEM != "" && !roots.AppendCertsFromPEM([]byte(o.RootPEM)) {
			return nil, errors.New("the PostgreSQL root certificate holds no PEM certificate")
		}
		opts = append(opts, postgres.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	} else if o.RootPEM != "" {
		return nil, fmt.Errorf("a PostgreSQL root certificate is set but TLS is off")
	}
	if o.CreateFrom != "" {
		opts = append(opts, postgres.WithCreateDatabase(o.CreateFrom))
	}
	if o.MaxConns < 0 || o.MaxConns > math.MaxInt32 {
		return nil, fmt.Errorf("the database pool size %d is out of range", o.MaxConns)
	}
	if o.MaxConns > 0 {
		opts = append(opts, postgres.WithMaxConns(int32(o.MaxConns)))
	}
	return opts, nil
}
