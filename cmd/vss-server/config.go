package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/govss/vss/internal/app"
)

// This file reads the configuration of the reference VSS server, so that an operator can
// swap binaries without rewriting anything: its TOML file (vss-server-config.toml, every
// generation of its format) and its environment variables. Each reference setting is
// translated into the VSS_ variable of ours with the same meaning, and parseConfig reads
// those through configFile.getenv, so the order of precedence is: flags, then our VSS_
// variables, then the reference server's variables, then the [vss] table of the file,
// then the reference settings of the file, then the defaults. The reference server too
// lets its variables override its file.

// configFile is what was read from the configuration file and the reference server's
// environment variables.
type configFile struct {
	path string
	// env holds values for our VSS_ variables that the reference variables give.
	env map[string]string
	// own holds values for our VSS_ variables from the file's [vss] table.
	own map[string]string
	// file holds values for our VSS_ variables that the reference settings of the file
	// give.
	file map[string]string
	// asked records which VSS_ variables parseConfig looked up, to find [vss] keys that
	// name no setting.
	asked map[string]bool
	// database holds what the reference PostgreSQL settings say that a URL cannot.
	database app.DatabaseOptions
	// databaseURL is the URL built from the reference PostgreSQL settings, if any.
	databaseURL string
	warnings    []string
}

// loadConfig finds the configuration file in args (the first argument when it names an
// existing file or ends in .toml, as the reference server takes it, or --config FILE),
// reads it and the reference server's environment variables, and returns the arguments
// left for the flags and the configuration.
func loadConfig(args []string, getenv func(string) string) ([]string, *configFile, error) {
	c := &configFile{env: map[string]string{}, own: map[string]string{}, file: map[string]string{}, asked: map[string]bool{}}
	if len(args) > 0 && isConfigPath(args[0]) {
		c.path, args = args[0], args[1:]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "config" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, errors.New("--config: want a file name")
			}
			value = args[i+1]
		}
		if c.path != "" && c.path != value {
			return nil, nil, fmt.Errorf("two configuration files: %s and %s", c.path, value)
		}
		c.path = value
	}

	var doc map[string]any
	if c.path != "" {
		b, err := os.ReadFile(c.path)
		if err != nil {
			return nil, nil, fmt.Errorf("read configuration file: %w", err)
		}
		if err := toml.Unmarshal(b, &doc); err != nil {
			return nil, nil, fmt.Errorf("parse configuration file %s: %w", c.path, err)
		}
	}
	if err := c.read(doc, getenv); err != nil {
		if c.path != "" {
			return nil, nil, fmt.Errorf("configuration file %s: %w", c.path, err)
		}
		return nil, nil, err
	}
	return args, c, nil
}

// isConfigPath reports whether a first argument names a configuration file rather than
// a subcommand or a flag.
func isConfigPath(arg string) bool {
	if strings.HasPrefix(arg, "-") || arg == "" {
		return false
	}
	if strings.HasSuffix(arg, ".toml") {
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && fi.Mode().IsRegular()
}

// getenv returns the value of our VSS_ variable name, falling back to what the
// reference server's variables and the configuration file say.
func (c *configFile) getenv(real func(string) string) func(string) string {
	return func(name string) string {
		c.asked[name] = true
		if v := real(name); v != "" {
			return v
		}
		for _, m := range []map[string]string{c.env, c.own, c.file} {
			if v, ok := m[name]; ok {
				return v
			}
		}
		return ""
	}
}

// referenceSetting is one setting of the reference server that maps to one of ours.
type referenceSetting struct {
	keys []string // TOML keys, newest format first
	vars []string // environment variables
	ours string   // our VSS_ variable
}

var referenceSettings = []referenceSetting{
	{keys: []string{"server_config.bind_address"}, vars: []string{"VSS_BIND_ADDRESS"}, ours: "VSS_LISTEN"},
	{keys: []string{"server_config.max_request_body_size"}, vars: []string{"VSS_MAX_REQUEST_BODY_SIZE"}, ours: "VSS_MAX_BODY_BYTES"},
	{keys: []string{"log_config.level"}, ours: "VSS_LOG_LEVEL"}, // the variable is the same as ours
	{keys: []string{"jwt_auth_config.rsa_pem"}, vars: []string{"VSS_JWT_RSA_PEM"}, ours: "VSS_JWT_RSA_PEM"},
	{keys: []string{"server_config.rsa_pub_file_path"}, ours: "VSS_JWT_PUBLIC_KEY_FILE"},
	{keys: []string{"log_config.file"}, vars: []string{"VSS_LOG_FILE"}, ours: "VSS_LOG_FILE"},
}

// postgresSettings names the parts of the reference server's PostgreSQL settings.
var postgresSettings = map[string]referenceSetting{
	"username":         {keys: []string{"postgresql_config.username"}, vars: []string{"VSS_PSQL_USERNAME", "VSS_POSTGRESQL_USERNAME"}},
	"password":         {keys: []string{"postgresql_config.password"}, vars: []string{"VSS_PSQL_PASSWORD", "VSS_POSTGRESQL_PASSWORD"}},
	"address":          {keys: []string{"postgresql_config.address"}, vars: []string{"VSS_PSQL_ADDRESS"}},
	"default_database": {keys: []string{"postgresql_config.default_database"}, vars: []string{"VSS_PSQL_DEFAULT_DB"}},
	"vss_database":     {keys: []string{"postgresql_config.vss_database", "postgresql_config.database"}, vars: []string{"VSS_PSQL_VSS_DB"}},
}

// knownKeys are the reference keys read by read, beyond those of the tables above.
var knownKeys = []string{
	"server_config.host", "server_config.port", "server_config.store_type",
	"postgresql_config.host", "postgresql_config.port",
	"postgresql_config.tls.crt_pem", "postgresql_config.tls.ca_file",
}

// read fills c from the decoded file doc (nil when there is none) and the reference
// server's environment variables.
func (c *configFile) read(doc map[string]any, getenv func(string) string) error {
	flat := map[string]any{}
	tables := map[string]bool{}
	flatten("", doc, flat, tables)
	known := map[string]bool{}
	for _, k := range knownKeys {
		known[k] = true
	}
	for _, s := range referenceSettings {
		for _, k := range s.keys {
			known[k] = true
		}
	}
	for _, s := range postgresSettings {
		for _, k := range s.keys {
			known[k] = true
		}
	}
	str := func(key string) (string, bool, error) {
		known[key] = true
		v, ok := flat[key]
		if !ok {
			return "", false, nil
		}
		s, err := scalar(v)
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", key, err)
		}
		return s, true, nil
	}
	// lookup returns a setting's value from its variables, else from the file.
	lookup := func(s referenceSetting) (value string, fromEnv, ok bool, err error) {
		for _, v := range s.vars {
			if x := getenv(v); x != "" {
				return x, true, true, nil
			}
		}
		for _, k := range s.keys {
			if x, ok, err := str(k); err != nil || ok {
				return x, false, ok, err
			}
		}
		return "", false, false, nil
	}

	for _, s := range referenceSettings {
		v, fromEnv, ok, err := lookup(s)
		if err != nil {
			return err
		}
		if ok && fromEnv {
			c.env[s.ours] = v
		} else if ok {
			c.file[s.ours] = v
		}
	}
	// The first generation of the file had host and port instead of bind_address.
	if _, ok := c.file["VSS_LISTEN"]; !ok {
		host, hasHost, err := str("server_config.host")
		if err != nil {
			return err
		}
		port, hasPort, err := str("server_config.port")
		if err != nil {
			return err
		}
		if hasHost || hasPort {
			if !hasHost || !hasPort {
				return errors.New("server_config: host and port go together")
			}
			c.file["VSS_LISTEN"] = net.JoinHostPort(host, port)
		}
	}
	if st, ok, err := str("server_config.store_type"); err != nil {
		return err
	} else if ok {
		switch st {
		case "postgres":
		case "in_memory", "in-memory":
			c.file["VSS_DATABASE_URL"] = app.MemoryURL
			c.warn("server_config.store_type = %q: using the in-memory store; its data is lost when the server stops", st)
		default:
			return fmt.Errorf("server_config.store_type: want postgres or in_memory, got %q", st)
		}
	}
	if err := c.readPostgres(tables, str, lookup, getenv); err != nil {
		return err
	}

	// Our own settings: [vss] key = value sets VSS_KEY.
	for k, v := range flat {
		name, ok := strings.CutPrefix(k, "vss.")
		if !ok {
			continue
		}
		known[k] = true
		s, err := scalar(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		c.own["VSS_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = s
	}

	var unknown []string
	for k := range flat {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		if strings.HasPrefix(k, "sentry_config.") {
			c.warn("%s is ignored: this server does not report to Sentry", k)
			continue
		}
		c.warn("unknown setting %s is ignored", k)
	}
	return nil
}

// readPostgres builds the database URL and options from the reference server's
// PostgreSQL settings: username, password, address (or host and port), the default
// database (connected to first, to create the VSS database when it is missing), the
// VSS database, and TLS.
func (c *configFile) readPostgres(tables map[string]bool,
	str func(string) (string, bool, error),
	lookup func(referenceSetting) (string, bool, bool, error),
	getenv func(string) string,
) error {
	values := map[string]string{}
	present := tables["postgresql_config"]
	for name, s := range postgresSettings {
		v, _, ok, err := lookup(s)
		if err != nil {
			return err
		}
		if ok {
			values[name] = v
			present = true
		}
	}
	if _, ok := values["address"]; !ok {
		host, hasHost, err := str("postgresql_config.host")
		if err != nil {
			return err
		}
		port, hasPort, err := str("postgresql_config.port")
		if err != nil {
			return err
		}
		if hasHost {
			if !hasPort {
				port = "5432"
			}
			values["address"] = net.JoinHostPort(host, port)
		}
	}

	// TLS: VSS_PSQL_CRT_PEM (a root certificate) or VSS_PSQL_TLS (system roots), else
	// the [postgresql_config.tls] table, with crt_pem or, in older files, ca_file.
	tls := c.database.TLS
	if pem := getenv("VSS_PSQL_CRT_PEM"); pem != "" {
		tls, c.database.RootPEM = true, pem
	} else if v := getenv("VSS_PSQL_TLS"); v != "" {
		tls = !slices.Contains([]string{"0", "false", "off", "no"}, strings.ToLower(v))
	} else if tables["postgresql_config.tls"] {
		tls = true
		pem, _, err := str("postgresql_config.tls.crt_pem")
		if err != nil {
			return err
		}
		if caFile, ok, err := str("postgresql_config.tls.ca_file"); err != nil {
			return err
		} else if ok && pem == "" {
			b, err := os.ReadFile(caFile)
			if err != nil {
				return fmt.Errorf("postgresql_config.tls.ca_file: %w", err)
			}
			pem = string(b)
		}
		c.database.RootPEM = pem
	}
	c.database.TLS = tls
	if !present {
		if tls {
			return errors.New("PostgreSQL TLS is configured but no [postgresql_config] or VSS_PSQL_ settings are")
		}
		return nil
	}

	var missing []string
	for _, name := range []string{"username", "password", "address", "vss_database"} {
		if values[name] == "" {
			s := postgresSettings[name]
			missing = append(missing, fmt.Sprintf("%s (or %s)", s.keys[0], s.vars[0]))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("incomplete PostgreSQL settings: missing %s", strings.Join(missing, ", "))
	}
	query := url.Values{"sslmode": {"disable"}}
	if tls {
		query.Set("sslmode", "verify-full")
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(values["username"], values["password"]),
		Host:     values["address"],
		Path:     "/" + values["vss_database"],
		RawQuery: query.Encode(),
	}
	c.databaseURL = u.String()
	c.database.CreateFrom = values["default_database"]
	c.file["VSS_DATABASE_URL"] = c.databaseURL
	return nil
}

// apply completes cfg, whose flags are parsed, with what only the file and the
// reference variables can say, and logs the warnings.
func (c *configFile) apply(cfg *app.Config, log *slog.Logger) error {
	if c.databaseURL != "" && cfg.DatabaseURL == c.databaseURL {
		cfg.Database = c.database
	} else if c.databaseURL != "" {
		c.warn("the [postgresql_config] and VSS_PSQL_ settings are ignored: --database-url, VSS_DATABASE_URL or vss.database_url overrides them")
	}
	for name := range c.own {
		if !c.asked[name] {
			key := "vss." + strings.ToLower(strings.TrimPrefix(name, "VSS_"))
			c.warn("unknown setting %s is ignored", key)
		}
	}
	if c.path != "" {
		log.Info("configuration file read", "path", c.path)
	}
	for _, w := range c.warnings {
		log.Warn(w)
	}
	return nil
}

func (c *configFile) warn(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

// flatten records the leaves of the TOML document t under their dotted keys, and the
// tables it holds.
func flatten(prefix string, t map[string]any, leaves map[string]any, tables map[string]bool) {
	for k, v := range t {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			tables[key] = true
			flatten(key, sub, leaves, tables)
			continue
		}
		leaves[key] = v
	}
}

// scalar renders a TOML value as the string an environment variable would hold.
func scalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := scalar(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("unsupported value of type %T", v)
	}
}

// parseLogLevel reads a log level by our names (debug, info, warn, error) or the
// reference server's (trace, debug, info, warn, error, off), in any case.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return slog.LevelDebug, nil
	case "warning":
		return slog.LevelWarn, nil
	case "off":
		return slog.LevelError + 1000, nil
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("want trace, debug, info, warn, error or off, got %q", s)
	}
	return lvl, nil
}
