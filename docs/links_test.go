package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pages are the Markdown files whose links are checked: the README, every page here, and the manifests' README.
func pages(t *testing.T) []string {
	t.Helper()
	here, err := filepath.Glob("*.md")
	require.NoError(t, err)
	require.NotEmpty(t, here)
	return append([]string{"../README.md", "../manifests/README.md"}, here...)
}

var (
	fence    = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	link     = regexp.MustCompile(`!?\[[^\]]*\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)
	heading  = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	scheme   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// prose is a page's lines outside fenced code blocks; code blocks hold shell comments and output, not headings or
// links.
func prose(text string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			in = !in
			continue
		}
		if !in {
			out = append(out, line)
		}
	}
	return out
}

// slug is GitHub's anchor for a heading's text: lower case, code spans' backticks and link targets gone, every
// character but letters, digits, spaces, '-' and '_' dropped, spaces turned into '-'.
func slug(text string) string {
	text = link.ReplaceAllStringFunc(text, func(m string) string { // [text](target) reads as text
		return m[strings.IndexByte(m, '[')+1 : strings.Index(m, "](")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// anchors are a page's heading anchors, with GitHub's -1, -2, … for repeated headings.
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range prose(text) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := slug(m[2])
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// links are a page's link targets outside code.
func links(text string) []string {
	var out []string
	for _, line := range prose(text) {
		for _, m := range link.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// TestLinksResolve: every relative link in the pages names a file or directory of the repository, and every
// #anchor a heading of the page it points into.
func TestLinksResolve(t *testing.T) {
	texts := map[string]string{}
	read := func(path string) (string, bool) {
		path = filepath.Clean(path)
		if text, ok := texts[path]; ok {
			return text, true
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return "", false
		}
		texts[path] = string(data)
		return texts[path], true
	}
	checked := 0
	for _, page := range pages(t) {
		text, ok := read(page)
		require.True(t, ok, "%s is readable", page)
		for _, target := range links(text) {
			if scheme.MatchString(target) {
				continue // http(s), mailto: not checked here
			}
			checked++
			path, anchor, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				file = filepath.Join(filepath.Dir(page), path)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %q: %s does not exist", page, target, file)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(file, ".md") {
				t.Errorf("%s: link %q: an anchor into %s, which is not a Markdown page", page, target, file)
				continue
			}
			targetText, ok := read(file)
			if !ok {
				t.Errorf("%s: link %q: %s is not readable", page, target, file)
				continue
			}
			if !anchors(targetText)[anchor] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", page, target, file, anchor)
			}
		}
	}
	assert.Greater(t, checked, 30, "the pages' relative links were found")
}

// TestSlug: GitHub's anchors for headings of the kinds these pages have.
func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Configuration details":                                "configuration-details",
		"The calls `register.sh` makes":                        "the-calls-registersh-makes",
		"3. Check, deploy, ping, stop, start, reboot, expunge": "3-check-deploy-ping-stop-start-reboot-expunge",
		"Who can set which detail":                             "who-can-set-which-detail",
		"A kubeconfig for the extension":                       "a-kubeconfig-for-the-extension",
		"Installing it in CloudStack":                          "installing-it-in-cloudstack",
		"snake_case and a-hyphen":                              "snake_case-and-a-hyphen",
		"See [the page](x.md)":                                 "see-the-page",
	} {
		assert.Equal(t, want, slug(heading), heading)
	}
	got := anchors("# A\n## A\n```\n# not a heading\n```\n## A\n")
	assert.Equal(t, map[string]bool{"a": true, "a-1": true, "a-2": true}, got)
}
