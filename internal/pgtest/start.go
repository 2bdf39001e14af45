package pgtest

// StartCluster starts a throwaway PostgreSQL cluster the way Main does for tests (initdb
// into a new temporary directory, as the "postgres" user when running as root, served
// on 127.0.0.1 on a free port, with durability off) for programs that are not tests,
// such as the benchmark command. It returns the administrative URL (database
// "postgres", user "postgres", no password) and a function that stops the server and
// removes its directory. The server dies with the calling process if that crashes.
func StartCluster() (url string, stop func(), err error) {
	return StartClusterWith(ClusterOptions{})
}

// StartClusterWith is StartCluster with the files and settings of o; with o.Durable the
// server flushes every commit to disk as production does.
func StartClusterWith(o ClusterOptions) (url string, stop func(), err error) {
	c, err := startCluster(o)
	if err != nil {
		return "", nil, err
	}
	return c.url, c.stop, nil
}
