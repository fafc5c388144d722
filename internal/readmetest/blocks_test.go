package readmetest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// A block is one fenced code block of the README.
type block struct {
	line  int    // line of the opening fence, 1-based
	lang  string // the info string's first word: sh, json, "" …
	text  string // the lines between the fences, each ending in \n
	mark  string // "", markNotRun or markUndone
	why   string // the marker's reason
	first int    // line of the block's first text line
}

// The markers a block may carry on the line above its fence (blank lines
// between are allowed).
const (
	markNotRun = "not run"
	markUndone = "run, then undone"
)

// markerRE matches a marker line; the dash may be an em dash or one or two
// hyphens.
var markerRE = regexp.MustCompile(`^<!--\s*readme:\s*(.*?)\s*(?:—|--?)\s*(.*?)\s*-->$`)

// runnable languages are run by the shell; json blocks are checked to parse.
func runnable(lang string) bool { return lang == "sh" || lang == "bash" || lang == "shell" }

// parseBlocks returns the fenced blocks of a Markdown text, each with the
// marker above it, and an error naming every block that is neither runnable,
// nor JSON, nor marked, and every malformed marker.
func parseBlocks(md string) ([]block, error) {
	lines := strings.SplitAfter(md, "\n")
	var (
		blocks   []block
		problems []string
		cur      *block
		fence    string
	)
	for i, raw := range lines {
		l := strings.TrimRight(raw, "\r\n")
		if cur != nil {
			if strings.TrimSpace(l) == fence {
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			cur.text += l + "\n"
			continue
		}
		trimmed := strings.TrimLeft(l, " ")
		if !strings.HasPrefix(trimmed, "```") && !strings.HasPrefix(trimmed, "~~~") {
			continue
		}
		fence = strings.Repeat(trimmed[:1], len(trimmed)-len(strings.TrimLeft(trimmed, trimmed[:1])))
		info := strings.Fields(strings.TrimPrefix(trimmed, fence))
		b := block{line: i + 1, first: i + 2}
		if len(info) > 0 {
			b.lang = info[0]
		}
		// The marker: the nearest non-blank line above.
		for j := i - 1; j >= 0; j-- {
			above := strings.TrimSpace(lines[j])
			if above == "" {
				continue
			}
			if strings.HasPrefix(above, "<!--") && strings.Contains(above, "readme:") {
				m := markerRE.FindStringSubmatch(above)
				switch {
				case m == nil:
					problems = append(problems, fmt.Sprintf("README.md:%d: malformed marker %q; write <!-- readme: not run — REASON --> or <!-- readme: run, then undone — REASON -->", j+1, above))
				case m[1] != markNotRun && m[1] != markUndone:
					problems = append(problems, fmt.Sprintf("README.md:%d: unknown marker %q (only %q and %q)", j+1, m[1], markNotRun, markUndone))
				case m[2] == "":
					problems = append(problems, fmt.Sprintf("README.md:%d: the marker gives no reason", j+1))
				default:
					b.mark, b.why = m[1], m[2]
				}
			}
			break
		}
		cur = &b
	}
	if cur != nil {
		problems = append(problems, fmt.Sprintf("README.md:%d: the block is never closed", cur.line))
	}
	for _, b := range blocks {
		switch {
		case b.mark == markNotRun:
		case runnable(b.lang):
		case b.mark == markUndone:
			problems = append(problems, fmt.Sprintf("README.md:%d: only an sh block can be run and undone, not ```%s", b.line, b.lang))
		case b.lang == "json":
			if err := checkJSON(b.text); err != nil {
				problems = append(problems, fmt.Sprintf("README.md:%d: the json block does not parse: %v", b.line, err))
			}
		default:
			problems = append(problems, fmt.Sprintf("README.md:%d: a ```%s block is not run: make it an sh example, or put <!-- readme: not run — REASON --> above it", b.line, b.lang))
		}
	}
	if len(problems) > 0 {
		return blocks, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return blocks, nil
}

// checkJSON accepts one JSON value, or one per line (NDJSON).
func checkJSON(text string) error {
	if json.Valid([]byte(text)) {
		return nil
	}
	for i, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if !json.Valid([]byte(l)) {
			return fmt.Errorf("neither one JSON value nor one per line (line %d)", i+1)
		}
	}
	return nil
}

// TestParseBlocks checks the rules on markers, so that a README block can
// only be left out by saying why.
func TestParseBlocks(t *testing.T) {
	tests := []struct {
		name    string
		md      string
		want    []block
		wantErr string
	}{
		{
			name: "sh runs, marked blocks carry their reason",
			md: "text\n```sh\necho hi\n```\n\n<!-- readme: not run — needs docker -->\n\n```sh\ndocker run x\n```\n" +
				"<!-- readme: run, then undone -- closes the form -->\n```sh\nfsctl form close\n```\n",
			want: []block{
				{line: 2, lang: "sh", text: "echo hi\n", first: 3},
				{line: 8, lang: "sh", text: "docker run x\n", mark: markNotRun, why: "needs docker", first: 9},
				{line: 12, lang: "sh", text: "fsctl form close\n", mark: markUndone, why: "closes the form", first: 13},
			},
		},
		{name: "a bare block is refused", md: "```\nsome output\n```\n", wantErr: "README.md:1: a ``` block is not run"},
		{name: "a yaml block is refused", md: "```yaml\na: 1\n```\n", wantErr: "README.md:1: a ```yaml block is not run"},
		{name: "a marker without reason", md: "<!-- readme: not run -->\n```\nx\n```\n", wantErr: "README.md:1: malformed marker"},
		{name: "an unknown marker", md: "<!-- readme: skipped — why -->\n```\nx\n```\n", wantErr: `unknown marker "skipped"`},
		{name: "json must parse", md: "```json\n{\"a\": 1,}\n```\n", wantErr: "the json block does not parse"},
		{name: "ndjson parses", md: "```json\n{\"a\": 1}\n{\"b\": 2}\n```\n", want: []block{{line: 1, lang: "json", text: "{\"a\": 1}\n{\"b\": 2}\n", first: 2}}},
		{name: "undone only for sh", md: "<!-- readme: run, then undone — x -->\n```json\n{}\n```\n", wantErr: "only an sh block can be run and undone"},
		{name: "an unclosed block", md: "```sh\necho\n", wantErr: "never closed"},
		{name: "an HTML comment that is no marker", md: "<!-- a note -->\n```sh\necho\n```\n", want: []block{{line: 2, lang: "sh", text: "echo\n", first: 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBlocks(tc.md)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("blocks\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
