package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Result(), string(body)
}

func TestDirectPage(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "core"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "core", "rfb.js"), []byte("export default class RFB {}"), 0o644))
	tests := []struct {
		name     string
		novncDir string
		path     string
		status   int
		contains string
	}{
		{name: "page with noVNC", novncDir: dir, path: "/?token=s3cr3t-token", status: 200, contains: "import RFB from './novnc/core/rfb.js'"},
		{name: "noVNC's files", novncDir: dir, path: "/novnc/core/rfb.js", status: 200, contains: "class RFB"},
		{name: "page without noVNC", path: "/?token=s3cr3t-token", status: 200, contains: "has no noVNC: start it with --novnc-dir"},
		{name: "no files without noVNC", path: "/novnc/core/rfb.js", status: 404},
		{name: "a directory without noVNC in it", novncDir: t.TempDir(), path: "/", status: 200, contains: "has no noVNC"},
		{name: "nothing else", novncDir: dir, path: "/etc/passwd", status: 404},
		{name: "no token in the page", novncDir: dir, path: "/?token=s3cr3t-token", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(Config{NoVNCDir: tt.novncDir})
			resp, body := get(t, g.DirectHandler(), tt.path)
			assert.Equal(t, tt.status, resp.StatusCode)
			if tt.contains != "" {
				assert.Contains(t, body, tt.contains)
			}
			assert.NotContains(t, body, "s3cr3t-token", "the page reads the token from its URL; it never embeds it")
			if tt.status == 200 && strings.HasPrefix(tt.path, "/?") {
				assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
				assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			}
		})
	}
}
