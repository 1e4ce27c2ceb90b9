package readmetest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// mdLink is a Markdown link or image: [text](target).
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// codePath is a repository path written as code: `docs/guide.md`,
	// `internal/arm/apiversions.go`, `bench/run.sh`.
	codePath = regexp.MustCompile("`((?:docs|internal|cmd|bench|scripts)/[A-Za-z0-9_./-]+)`")
	// fence is a fenced code block, whose text is code, not Markdown.
	fence = regexp.MustCompile("(?ms)^```.*?^```")
	// heading is a Markdown heading line.
	heading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
)

// TestDocLinks checks that every link and every repository path in
// README.md and docs/*.md resolves: relative links to an existing file
// (and, with a #fragment, to one of its headings), code-formatted paths to
// an existing file or directory of the repository. Web links are not
// followed (the tests never leave the machine).
func TestDocLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join(root, "README.md"))
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := fence.ReplaceAllString(string(b), "")
		name, _ := filepath.Rel(root, doc)
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := doc
			if file != "" {
				path = filepath.Join(filepath.Dir(doc), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %s: %v", name, target, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(path, ".md") && !hasAnchor(t, path, frag) {
				t.Errorf("%s: link %s: no heading with anchor #%s in %s", name, target, frag, filepath.Base(path))
			}
		}
		for _, m := range codePath.FindAllStringSubmatch(text, -1) {
			p := strings.TrimRight(m[1], ".")
			if strings.ContainsAny(p, "*{}") {
				continue // a pattern, not a path
			}
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s: path `%s` does not exist in the repository", name, p)
			}
		}
	}
}

// hasAnchor reports whether the Markdown file path has a heading whose
// GitHub anchor is frag.
func hasAnchor(t *testing.T, path, frag string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
		if anchor(m[1]) == strings.ToLower(frag) {
			return true
		}
	}
	// Explicit anchors: <a id="..."></a> or <a name="...">.
	return strings.Contains(string(b), `id="`+frag+`"`) || strings.Contains(string(b), `name="`+frag+`"`)
}

// anchor is GitHub's anchor for a heading: lower case, punctuation other
// than '-' and '_' dropped, spaces as '-'.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}
