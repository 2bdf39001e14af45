package app

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/govss/vss/server"
	"github.com/govss/vss/server/auth"
	"github.com/govss/vss/server/lnurlauth"
	"github.com/govss/vss/storage"
)

// AuthConfig selects and configures how requests are authenticated.
type AuthConfig struct {
	// Schemes is a comma-separated list of "signature" and "jwt", or "none". Empty means
	// "jwt" when any JWT key source or the LNURL-auth issuer is configured, and
	// "signature" otherwise.
	Schemes string
	// JWTPublicKeyFile is a PEM file of public keys that sign accepted JWTs.
	JWTPublicKeyFile string
	// JWTPublicKeyPEM holds PEM public keys directly (the reference server's
	// VSS_JWT_RSA_PEM).
	JWTPublicKeyPEM string
	// JWKS is a JWKS document's file path or http(s) URL, refreshed periodically.
	JWKS string
	// JWTLeeway is the clock skew allowed when checking exp, nbf and iat.
	JWTLeeway time.Duration
	// LNURLAuth enables the built-in LNURL-auth issuer of JWTs at /auth/lnurl.
	LNURLAuth bool
	// PublicURL is the server's public base URL, from which LNURLs are built.
	PublicURL string
	// LNURLTokenTTL is how long issued JWTs are valid.
	LNURLTokenTTL time.Duration
	// JWTPubkeySubjects declares that the configured JWT issuers put a public key in sub
	// only after its holder proved it, so that such a token reaches the data of the
	// signature user of that key (see auth.Combine). Without it, such tokens are refused
	// whenever this server proves keys itself (signature scheme or LNURL-auth on).
	JWTPubkeySubjects bool
}

// jwtConfigured reports whether any source of JWT keys is configured.
func (c AuthConfig) jwtConfigured() bool {
	return c.JWTPublicKeyFile != "" || c.JWTPublicKeyPEM != "" || c.JWKS != "" || c.LNURLAuth
}

// setUpAuth builds the authorizer that c describes and, with LNURL-auth on, the issuer
// whose routes the server must serve.
func setUpAuth(ctx context.Context, c AuthConfig, store storage.Store, log *slog.Logger) (server.Authorizer, func(*http.ServeMux), error) {
	schemes := c.Schemes
	if schemes == "" {
		schemes = "signature"
		if c.jwtConfigured() {
			schemes = "jwt"
		}
	}
	var useSignature, useJWT bool
	for _, s := range strings.Split(schemes, ",") {
		switch strings.TrimSpace(s) {
		case "signature":
			useSignature = true
		case "jwt":
			useJWT = true
		case "none":
			if schemes != "none" {
				return nil, nil, errors.New("--auth none cannot be combined with other schemes")
			}
			if c.jwtConfigured() {
				return nil, nil, errors.New("--auth none conflicts with the JWT and LNURL-auth settings")
			}
			log.Warn("AUTHENTICATION IS OFF (--auth none): every client shares one user's data. " +
				"Use this only for local development and tests, never in production.")
			return server.NoAuth(), nil, nil
		default:
			return nil, nil, fmt.Errorf("unknown authentication scheme %q (supported: signature, jwt, none)", s)
		}
	}
	if c.jwtConfigured() && !useJWT {
		return nil, nil, errors.New("JWT keys or LNURL-auth are configured but --auth does not include jwt")
	}

	var signature, bearer server.Authorizer
	if useSignature {
		signature = auth.NewSignature(time.Now)
	}
	var routes func(*http.ServeMux)
	if useJWT {
		var keys []crypto.PublicKey
		var proving map[string]crypto.PublicKey
		if c.JWTPublicKeyFile != "" {
			data, err := os.ReadFile(c.JWTPublicKeyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("--jwt-public-key-file: %w", err)
			}
			if keys, err = auth.ParsePublicKeys(data); err != nil {
				return nil, nil, fmt.Errorf("--jwt-public-key-file %s: %w", c.JWTPublicKeyFile, err)
			}
		}
		if c.JWTPublicKeyPEM != "" {
			parsed, err := auth.ParsePublicKeys([]byte(c.JWTPublicKeyPEM))
			if err != nil {
				return nil, nil, fmt.Errorf("VSS_JWT_PUBLIC_KEY_PEM / VSS_JWT_RSA_PEM: %w", err)
			}
			keys = append(keys, parsed...)
		}
		if c.LNURLAuth {
			issuer, err := newIssuer(ctx, c, store, log)
			if err != nil {
				return nil, nil, err
			}
			// Its tokens' subjects are keys their holders proved.
			proving = map[string]crypto.PublicKey{issuer.KeyID(): issuer.PublicKey()}
			routes = issuer.Routes
		}
		cfg := auth.JWTConfig{Keys: keys, ProvingKeys: proving, KeySubjectsProven: c.JWTPubkeySubjects, Leeway: c.JWTLeeway, Logger: log}
		if strings.HasPrefix(c.JWKS, "http://") || strings.HasPrefix(c.JWKS, "https://") {
			cfg.JWKSURL = c.JWKS
		} else {
			cfg.JWKSFile = c.JWKS
		}
		if len(keys) == 0 && len(proving) == 0 && c.JWKS == "" {
			return nil, nil, errors.New("--auth jwt needs keys: --jwt-public-key-file, VSS_JWT_RSA_PEM, --jwks or --lnurl-auth")
		}
		jwt, err := auth.NewJWT(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("JWT authentication: %w", err)
		}
		bearer = jwt
	}
	log.Info("authentication", "signature", useSignature, "jwt", useJWT, "lnurl_auth", c.LNURLAuth,
		"jwt_pubkey_subjects", c.JWTPubkeySubjects)
	return auth.Combine(bearer, signature), routes, nil
}

func newIssuer(ctx context.Context, c AuthConfig, store storage.Store, log *slog.Logger) (*lnurlauth.Issuer, error) {
	as, ok := store.(storage.AuthStore)
	if !ok {
		return nil, errors.New("--lnurl-auth: this store cannot keep LNURL-auth state")
	}
	u, err := url.Parse(c.PublicURL)
	if c.PublicURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--lnurl-auth needs --public-url, the server's public base URL such as https://vss.example.com (got %q)", c.PublicURL)
	}
	if u.Scheme == "http" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" && u.Hostname() != "::1" {
		log.Warn("--public-url is not https: LNURL-auth tokens will travel in the clear", "public_url", c.PublicURL)
	}
	issuer, err := lnurlauth.New(ctx, lnurlauth.Config{
		PublicURL: strings.TrimSuffix(c.PublicURL, "/"),
		Store:     as,
		TokenTTL:  c.LNURLTokenTTL,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("LNURL-auth issuer: %w", err)
	}
	log.Info("LNURL-auth issuer enabled", "lnurl", strings.TrimSuffix(c.PublicURL, "/")+"/auth/lnurl")
	return issuer, nil
}
