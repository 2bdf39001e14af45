package explorer

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/govss/vss/server"
)

// TestPageSizeLimit checks that the page size the explorer offers ends where the server's
// does: the page reads its limit from the input's max, which must be server.MaxPageSize.
func TestPageSizeLimit(t *testing.T) {
	for _, file := range []string{"index.html", "dist/index.html"} {
		html, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`<input id="page-size"[^>]*\smax="(\d+)"`).FindSubmatch(html)
		if m == nil {
			t.Fatalf("%s: no page size input with a max", file)
		}
		if max, _ := strconv.Atoi(string(m[1])); max != server.MaxPageSize {
			t.Errorf("%s: the page size goes up to %d, the server sends at most %d keys a page", file, max, server.MaxPageSize)
		}
		if !regexp.MustCompile(`a server sends at most ` + strconv.Itoa(server.MaxPageSize) + ` keys a page`).Match(html) {
			t.Errorf("%s: the note under the page size does not say %d", file, server.MaxPageSize)
		}
	}
}
