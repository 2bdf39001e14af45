package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// writeCompletion prints the completion script of shell, made from commandDocs and
// flagDocs: commands, each command's flags, files after the flags that name one
// (fileFlags) and as the argument of the commands that take one (fileArgCommands), and
// the shells after completion.
func writeCompletion(w io.Writer, shell string) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(w, bashCompletion())
		return err
	case "zsh":
		// zsh runs bash completion functions through bashcompinit.
		_, err := io.WriteString(w, "#compdef vssctl\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion())
		return err
	case "fish":
		_, err := io.WriteString(w, fishCompletion())
		return err
	}
	return usagef("completion: want bash, zsh or fish, got %q", shell)
}

// fileFlags are the flags whose argument is a file name.
var fileFlags = []string{"file", "private-key-file", "seed-file", "vss-seed-file", "out", "to-private-key-file"}

// fileArgCommands are the commands whose argument is a file name.
var fileArgCommands = []string{"import"}

func bashCompletion() string {
	var valued, files []string
	for _, f := range flagDocs {
		if f.arg != "" {
			valued = append(valued, "--"+f.name)
		}
	}
	for _, f := range fileFlags {
		files = append(files, "--"+f)
	}
	var b strings.Builder
	b.WriteString(`# bash completion for vssctl: source <(vssctl completion bash)
_vssctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --) break ;;
            ` + strings.Join(valued, "|") + `) ((i++)) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $prev in
        ` + strings.Join(files, "|") + `) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        ` + strings.Join(valued, "|") + `) COMPREPLY=(); return ;;
    esac
    local flags
    case $cmd in
        "")
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "` + strings.Join(commandNames(), " ") + `" -- "$cur"))
            fi
            return ;;
        completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
`)
	for _, c := range commandDocs {
		fmt.Fprintf(&b, "        %s) flags=%q ;;\n", c.name, strings.Join(dashed(flagsOf(c)), " ")+" --help")
	}
	b.WriteString(`        *) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ " ` + strings.Join(fileArgCommands, " ") + ` " == *" $cmd "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _vssctl vssctl
`)
	return b.String()
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for vssctl: vssctl completion fish > ~/.config/fish/completions/vssctl.fish\ncomplete -c vssctl -f\n")
	for _, c := range commandDocs {
		fmt.Fprintf(&b, "complete -c vssctl -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	b.WriteString("complete -c vssctl -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
	b.WriteString("complete -c vssctl -n '__fish_seen_subcommand_from " + strings.Join(fileArgCommands, " ") + "' -F\n")
	for _, f := range flagDocs {
		var cmds []string
		for _, c := range commandDocs {
			if slices.Contains(flagsOf(c), f.name) {
				cmds = append(cmds, c.name)
			}
		}
		line := fmt.Sprintf("complete -c vssctl -n '__fish_seen_subcommand_from %s' -l %s", strings.Join(cmds, " "), f.name)
		switch {
		case slices.Contains(fileFlags, f.name):
			line += " -r -F"
		case f.arg != "":
			line += " -x"
		}
		b.WriteString(line + " -d " + fishQuote(f.usage) + "\n")
	}
	return b.String()
}

func dashed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "--" + n
	}
	return out
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
