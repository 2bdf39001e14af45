// Package textwrap breaks help texts into lines for a terminal, for vss-server's and
// vssctl's --help.
package textwrap

import "strings"

// Lines breaks text into lines of at most width characters at spaces; a word longer
// than width gets a line of its own.
func Lines(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
