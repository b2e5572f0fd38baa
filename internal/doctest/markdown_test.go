package doctest

import (
	"strings"
)

// block is one fenced code block of a Markdown file.
type block struct {
	file  string   // the Markdown file, relative to the repository root
	line  int      // the line of its first line of code (1-based)
	lang  string   // the info string's first word: "go", "sh", …
	flags []string // the info string's other words: "nocompile"
	code  []string // its lines, without the fence's indentation
}

func (b block) has(flag string) bool {
	for _, f := range b.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// codeBlocks returns the fenced code blocks of a Markdown text: ``` or ~~~
// fences of three or more, indented by any amount (a block inside a list
// item is indented), closed by a fence of the same character at least as
// long, or by the end of the text. Indented (four-space) code blocks are not
// extracted: the docs fence their code.
func codeBlocks(file, text string) []block {
	var out []block
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " \t")
		fence := fenceOf(trimmed)
		if fence == "" {
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		info := strings.Fields(strings.TrimSpace(trimmed[len(fence):]))
		b := block{file: file, line: i + 2}
		if len(info) > 0 {
			b.lang, b.flags = info[0], info[1:]
		}
		for i++; i < len(lines); i++ {
			t := strings.TrimLeft(lines[i], " \t")
			if f := fenceOf(t); f != "" && f[0] == fence[0] && len(f) >= len(fence) && strings.TrimSpace(t[len(f):]) == "" {
				break
			}
			b.code = append(b.code, dedent(lines[i], indent))
		}
		out = append(out, b)
	}
	return out
}

// fenceOf returns the run of ` or ~ a line starts with, when it is a fence
// (three or more).
func fenceOf(s string) string {
	if len(s) < 3 || (s[0] != '`' && s[0] != '~') {
		return ""
	}
	n := 0
	for n < len(s) && s[n] == s[0] {
		n++
	}
	if n < 3 {
		return ""
	}
	return s[:n]
}

// dedent removes up to n leading spaces.
func dedent(s string, n int) string {
	i := 0
	for i < n && i < len(s) && s[i] == ' ' {
		i++
	}
	return s[i:]
}
